import Files
import Foundation
import SpecParser

/// A table's rows, encoded: float32 inputs (`width` a row) in one buffer and their targets.
public struct TableDataset: Dataset {
    public var count: Int
    public var sampleShape: [Int]
    public var samples: SampleValues
    public var targets: Targets
    public var origin: String
    /// A regressor's targets were standardized: value = stored * std + mean, per column.
    public var targetMeans: [Double] = []
    public var targetStds: [Double] = []
    /// A classifier's class names in output order.
    public var classNames: [String] = []
}

/// A CSV table loaded as the spec declares it: the training and test rows and how they were encoded.
public struct LoadedTable: Sendable {
    public var train: TableDataset
    public var test: TableDataset
    public var preprocessing: TablePreprocessing
    /// Rows and columns of the files as read (for `mlpc check`).
    public var fileRows: Int
    public var fileColumns: Int
}

/// Reads the header of the training file and checks it against the spec, before any row.
public func checkTableHeader(_ table: TableSpec) throws -> TableLayout {
    let header = try readTableHeader(path: table.resolvedTrain, format: CSVFormat(table))
    return try resolveTableLayout(header: header, path: table.resolvedTrain, table: table)
}

/// Loads a table spec's rows: header checked first, the rows parsed once (every bad cell a located
/// problem, at most 20 shown), statistics from the training split, then each raw row encoded into its
/// split's float32 buffer while the raw rows' pages are given back.
public func loadTable(_ table: TableSpec, seed: UInt64, memoryBytes: Int) throws -> LoadedTable {
    let layout = try checkTableHeader(table)
    let columns = layout.features + layout.targets
    var values = [InternedValues](repeating: InternedValues(), count: columns.count)
    var problems = TableProblems()
    let trainRaw = RawRows(width: columns.count, limitBytes: memoryBytes)
    try readTableRows(path: table.resolvedTrain, format: CSVFormat(table), layout: layout, into: trainRaw, values: &values, problems: &problems)
    var testRaw: RawRows?
    if let testPath = table.resolvedTest, problems.total == 0 {
        let testHeader = try readTableHeader(path: testPath, format: CSVFormat(table))
        let testLayout = try resolveTableLayout(header: testHeader, path: testPath, table: table)
        let raw = RawRows(width: columns.count, limitBytes: max(0, memoryBytes - trainRaw.bytes))
        try readTableRows(path: testPath, format: CSVFormat(table), layout: testLayout, into: raw, values: &values, problems: &problems)
        testRaw = raw
    }
    if problems.total > 0 { throw TableError(messages: problems.messages, total: problems.total) }
    let isTest = testRaw == nil ? testRowMask(count: trainRaw.rows, fraction: table.testFraction?.value ?? 0, seed: seed) : nil
    let preprocessing = try makePreprocessing(layout: layout, table: table, trainRows: [(trainRaw, isTest)], values: values)

    // Category id -> one-hot column, and the fill of every column as the raw rows store it.
    var categoryIndex: [[Int32]] = []
    var fills: [Float] = []
    for (slot, feature) in preprocessing.features.enumerated() {
        var index = [Int32](repeating: -1, count: values[slot].names.count)
        for (position, name) in feature.vocabulary.enumerated() { index[Int(values[slot].ids[name]!)] = Int32(position) }
        categoryIndex.append(index)
        fills.append(try fillValue(feature, values: values[slot], table: table))
    }
    let classIndex: [Int32] = {
        guard preprocessing.isClassifier else { return [] }
        let slot = layout.features.count
        var index = [Int32](repeating: 0, count: values[slot].names.count)
        for (position, name) in preprocessing.classNames.enumerated() { index[Int(values[slot].ids[name]!)] = Int32(position) }
        return index
    }()

    let testCount = testRaw?.rows ?? isTest!.lazy.filter { $0 }.count
    let trainCount = trainRaw.rows - (testRaw == nil ? testCount : 0)
    guard trainCount > 0 else { throw TableError(messages: ["\(pathForMessage(table.resolvedTrain)): no training rows"], total: 1) }
    guard testCount > 0 else {
        throw TableError(messages: ["\(pathForMessage(table.resolvedTest ?? table.resolvedTrain)): no test rows (the test fraction of \(trainRaw.rows) rows rounds to 0)"], total: 1)
    }
    let width = preprocessing.inputWidth
    let targetWidth = layout.targets.count
    let encoder = TableRowEncoder(preprocessing, categoryIndex: categoryIndex, fills: fills)
    let targetMeans = preprocessing.targetMeans, targetStds = preprocessing.targetStds
    let isClassifier = preprocessing.isClassifier
    let featureCount = layout.features.count

    /// Encodes rows `range` of `raw` into their places: a row goes to the test split when `toTest` says
    /// so, after `trainBefore` training rows and `testBefore` test rows; the raw pages are given back
    /// as it goes.
    func encode(
        _ raw: RawRows, _ range: Range<Int>, toTest: (Int) -> Bool, trainBefore: Int, testBefore: Int, _ out: SplitPointers
    ) {
        var train = trainBefore, test = testBefore
        let releaseEvery = max(1, (16 << 20) / max(1, raw.width * 4))
        var released = range.lowerBound
        for r in range {
            let row = raw.row(r)
            let isTest = toTest(r)
            let index = isTest ? test : train
            if isTest { test += 1 } else { train += 1 }
            encoder.encode(row, into: (isTest ? out.testInputs : out.trainInputs) + index * width)
            for t in 0..<targetWidth {
                let v = row[featureCount + t]
                if isClassifier {
                    (isTest ? out.testClasses : out.trainClasses)[index] = classIndex[Int(v)]
                } else {
                    (isTest ? out.testValues : out.trainValues)[index * targetWidth + t] = Float((Double(v) - targetMeans[t]) / targetStds[t])
                }
            }
            if r + 1 - released >= releaseEvery {
                raw.release(rows: released..<(r + 1))
                released = r + 1
            }
        }
    }
    /// Every raw row encoded, the rows cut into one piece per thread (each row's place is known
    /// from the test mask, so the result does not depend on the pieces).
    func encodeAll(_ out: SplitPointers) {
        var pieces: [() -> Void] = []
        if let testRaw {
            for (raw, isTest) in [(trainRaw, false), (testRaw, true)] {
                for range in pieceRanges(raw.rows, defaultReadingThreads) {
                    let trainBefore = isTest ? 0 : range.lowerBound, testBefore = isTest ? range.lowerBound : 0
                    pieces.append { encode(raw, range, toTest: { _ in isTest }, trainBefore: trainBefore, testBefore: testBefore, out) }
                }
            }
        } else {
            let mask = isTest!
            var testsBefore = 0, at = 0
            for range in pieceRanges(trainRaw.rows, defaultReadingThreads) {
                testsBefore += mask[at..<range.lowerBound].lazy.filter { $0 }.count
                at = range.lowerBound
                let testBefore = testsBefore, trainBefore = range.lowerBound - testsBefore
                pieces.append { mask.withUnsafeBufferPointer { m in encode(trainRaw, range, toTest: { m[$0] }, trainBefore: trainBefore, testBefore: testBefore, out) } }
            }
        }
        runAllConcurrently(pieces)
    }
    var trainClasses = [Int32](), testClasses = [Int32]()
    var trainValues = [Float](), testValues = [Float]()
    let (trainInputs, testInputs): ([Float], [Float]) = newArrays(trainCount * width, testCount * width) { trainIn, testIn in
        if isClassifier {
            (trainClasses, testClasses) = newArrays(trainCount, testCount) { trainT, testT in
                encodeAll(SplitPointers(trainInputs: trainIn, testInputs: testIn, trainClasses: trainT, testClasses: testT))
            }
        } else {
            (trainValues, testValues) = newArrays(trainCount * targetWidth, testCount * targetWidth) { trainT, testT in
                encodeAll(SplitPointers(trainInputs: trainIn, testInputs: testIn, trainValues: trainT, testValues: testT))
            }
        }
    }
    func dataset(_ inputs: [Float], _ classes: [Int32], _ values: [Float], count: Int, origin: String) -> TableDataset {
        let targets: Targets = preprocessing.isClassifier
            ? .classes(classes, classes: preprocessing.classNames.count) : .values(values, width: targetWidth)
        return TableDataset(
            count: count, sampleShape: [width], samples: .float32(inputs), targets: targets, origin: origin,
            targetMeans: preprocessing.targetMeans, targetStds: preprocessing.targetStds, classNames: preprocessing.classNames)
    }
    let trainOrigin = pathForMessage(table.resolvedTrain)
    let testOrigin = table.resolvedTest.map(pathForMessage) ?? "\(trainOrigin) (test rows)"
    return LoadedTable(
        train: dataset(trainInputs, trainClasses, trainValues, count: trainCount, origin: trainOrigin),
        test: dataset(testInputs, testClasses, testValues, count: testCount, origin: testOrigin),
        preprocessing: preprocessing, fileRows: trainRaw.rows + (testRaw?.rows ?? 0), fileColumns: layout.fields)
}

/// Where the encoded rows of each split go.
struct SplitPointers {
    var trainInputs: UnsafeMutablePointer<Float>
    var testInputs: UnsafeMutablePointer<Float>
    var trainClasses: UnsafeMutablePointer<Int32> = .init(bitPattern: 8)!
    var testClasses: UnsafeMutablePointer<Int32> = .init(bitPattern: 8)!
    var trainValues: UnsafeMutablePointer<Float> = .init(bitPattern: 8)!
    var testValues: UnsafeMutablePointer<Float> = .init(bitPattern: 8)!
}

/// Two arrays of `first` and `second` elements that `fill` writes every element of (their pages are
/// not touched before, so memory grows only as they are written).
func newArrays<A, B>(_ first: Int, _ second: Int, _ fill: (UnsafeMutablePointer<A>, UnsafeMutablePointer<B>) -> Void) -> ([A], [B]) {
    var b: [B] = []
    let a = [A](unsafeUninitializedCapacity: max(first, 1)) { aBuffer, aCount in
        b = [B](unsafeUninitializedCapacity: max(second, 1)) { bBuffer, bCount in
            fill(aBuffer.baseAddress!, bBuffer.baseAddress!)
            bCount = second
        }
        aCount = first
    }
    return (a, b)
}

/// `0..<count` cut into `pieces` ranges of about equal size (fewer when there are fewer items).
func pieceRanges(_ count: Int, _ pieces: Int) -> [Range<Int>] {
    let n = max(1, min(pieces, count))
    return (0..<n).map { k in count * k / n..<count * (k + 1) / n }
}

/// Runs `work` on as many threads (this one included), and returns when all have finished.
func runAllConcurrently(_ work: [() -> Void]) {
    guard let first = work.first else { return }
    if work.count == 1 { return first() }
    let rest = Array(work.dropFirst())
    _ = runConcurrently({ runAllConcurrently(rest) }, first)
}

/// A column's fill as the raw rows store it (NaN when its cells may not be empty).
private func fillValue(_ feature: TablePreprocessing.Feature, values: InternedValues, table: TableSpec) throws -> Float {
    guard let fill = feature.fill else { return .nan }
    switch feature.type {
    case .number:
        guard let value = Double(fill), Float(value).isFinite else {
            throw TableError(messages: ["the fill value '\(fill)' of column '\(feature.name)' is not a number"], total: 1)
        }
        return Float(value)
    case .binary:
        if binaryFalse.contains(fill.lowercased()) { return 0 }
        if binaryTrue.contains(fill.lowercased()) { return 1 }
        throw TableError(messages: ["the fill value '\(fill)' of column '\(feature.name)' is not a binary value (0/1, true/false, yes/no)"], total: 1)
    case .category:
        return values.ids[fill].map(Float.init) ?? -1
    }
}
