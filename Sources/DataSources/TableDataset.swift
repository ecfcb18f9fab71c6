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
    var trainInputs = [Float](repeating: 0, count: 0)
    var testInputs = [Float](repeating: 0, count: 0)
    var trainClasses = [Int32](), testClasses = [Int32]()
    var trainValues = [Float](), testValues = [Float]()
    trainInputs.reserveCapacity(trainCount * width)
    testInputs.reserveCapacity(testCount * width)

    /// Appends raw row `r` of `raw` to a split.
    func encodeRows(_ raw: RawRows, _ destination: (Int) -> Bool) {
        let releaseEvery = max(1, (16 << 20) / max(1, raw.width * 4))
        for r in 0..<raw.rows {
            let row = raw.row(r)
            let toTest = destination(r)
            // Appending through a pointer keeps the encoding a loop over floats.
            func append(_ inputs: inout [Float]) {
                let start = inputs.count
                inputs.append(contentsOf: repeatElement(0, count: width))
                inputs.withUnsafeMutableBufferPointer {
                    preprocessing.encode(row, categoryIndex: categoryIndex, fills: fills, into: $0.baseAddress! + start)
                }
            }
            if toTest { append(&testInputs) } else { append(&trainInputs) }
            for t in 0..<targetWidth {
                let v = row[layout.features.count + t]
                if preprocessing.isClassifier {
                    if toTest { testClasses.append(classIndex[Int(v)]) } else { trainClasses.append(classIndex[Int(v)]) }
                } else {
                    let standardized = Float((Double(v) - preprocessing.targetMeans[t]) / preprocessing.targetStds[t])
                    if toTest { testValues.append(standardized) } else { trainValues.append(standardized) }
                }
            }
            if (r + 1) % releaseEvery == 0 { raw.release(rowsBefore: r + 1) }
        }
    }
    if let testRaw {
        encodeRows(trainRaw) { _ in false }
        encodeRows(testRaw) { _ in true }
    } else {
        encodeRows(trainRaw) { isTest![$0] }
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
