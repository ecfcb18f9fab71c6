import Foundation
import SpecParser

/// How a table's raw rows become model inputs and targets: every statistic from the training split
/// only. Saved in model.safetensors' metadata, so that prediction encodes new rows the same way.
public struct TablePreprocessing: Codable, Equatable, Sendable {
    public struct Feature: Codable, Equatable, Sendable {
        public var name: String
        public var type: ColumnType
        /// A number's standardization: (x - mean) / std (std 1 for a constant column).
        public var mean: Double
        public var std: Double
        /// A category's values in one-hot order; the column after the last counts values not seen in training.
        public var vocabulary: [String]
        /// What an empty cell becomes: `missing` says how, `fill` is the value (a number, a binary 0/1,
        /// or the category text) the training split gave.
        public var missing: String
        public var fill: String?
        /// The first input column this feature writes, and how many.
        public var offset: Int
        public var width: Int
    }

    public var features: [Feature]
    public var targetColumns: [String]
    /// `category` (a classifier) or `number` (a regressor).
    public var targetType: ColumnType
    /// A classifier's class names, sorted; the model's output j is class `classNames[j]`.
    public var classNames: [String]
    /// A regressor's targets are trained standardized: (y - mean) / std per column.
    public var targetMeans: [Double]
    public var targetStds: [Double]
    /// Input values per row after one-hot encoding.
    public var inputWidth: Int
    /// Delimiter and header of the files it was made from.
    public var delimiter: UInt8
    public var header: Bool
    /// Cell texts read as an empty cell (`data.missing_values`); nil in files written before it existed.
    public var missingValues: [String]? = nil

    public var isClassifier: Bool { targetType == .category }
    public var outputWidth: Int { isClassifier ? classNames.count : targetColumns.count }
}

/// Deterministic pseudo-random numbers for the test split (SplitMix64).
struct TestSplitRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Which rows of a single file are test rows: a seeded shuffle's first `round(count * fraction)`.
func testRowMask(count: Int, fraction: Double, seed: UInt64) -> [Bool] {
    var order = Array(0..<count)
    var rng = TestSplitRandom(state: seed ^ 0x7E57_5EED)
    if count > 1 {
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = Int(rng.next() % UInt64(i + 1))
            order.swapAt(i, j)
        }
    }
    let held = Int((Double(count) * fraction).rounded())
    var mask = [Bool](repeating: false, count: count)
    for index in order.prefix(held) { mask[index] = true }
    return mask
}

/// Statistics of the training rows: per number column mean and standard deviation (population, as
/// scikit-learn's StandardScaler), per category column the values seen and their counts.
func makePreprocessing(
    layout: TableLayout, table: TableSpec, trainRows: [(RawRows, [Bool]?)], values: [InternedValues]
) throws -> TablePreprocessing {
    let columns = layout.features + layout.targets
    var sums = [Double](repeating: 0, count: columns.count)
    var squares = [Double](repeating: 0, count: columns.count)
    var counts = [Int](repeating: 0, count: columns.count)
    var categoryCounts = values.map { [Int](repeating: 0, count: $0.names.count) }
    let isCategory = columns.map { $0.type == .category }
    for (raw, isTest) in trainRows {
        for r in 0..<raw.rows where isTest?[r] != true {
            let row = raw.row(r)
            for slot in 0..<columns.count {
                let v = row[slot]
                if v.isNaN { continue }
                counts[slot] += 1
                if isCategory[slot] {
                    categoryCounts[slot][Int(v)] += 1
                } else {
                    sums[slot] += Double(v)
                    squares[slot] += Double(v) * Double(v)
                }
            }
        }
    }
    var features: [TablePreprocessing.Feature] = []
    var offset = 0
    for (slot, column) in layout.features.enumerated() {
        var feature = TablePreprocessing.Feature(
            name: column.name, type: column.type, mean: 0, std: 1, vocabulary: [], missing: column.missing.specName, fill: nil,
            offset: offset, width: 1)
        let n = Double(max(counts[slot], 1))
        let mean = sums[slot] / n
        switch column.type {
        case .number:
            let variance = max(0, squares[slot] / n - mean * mean)
            feature.mean = mean
            feature.std = variance > 0 ? variance.squareRoot() : 1
            switch column.missing {
            case .mean: feature.fill = "\(mean)"
            case .constant(let text): feature.fill = text
            default: break
            }
        case .binary:
            switch column.missing {
            case .mode, .mean: feature.fill = mean > 0.5 ? "1" : "0"
            case .constant(let text): feature.fill = text
            default: break
            }
        case .category:
            let seen = values[slot].names.indices.filter { categoryCounts[slot][$0] > 0 }
            feature.vocabulary = seen.map { values[slot].names[$0] }.sorted()
            feature.width = feature.vocabulary.count + 1
            switch column.missing {
            case .mode:
                // The most frequent value, the first in sorted order on a tie.
                let best = seen.max { a, b in
                    categoryCounts[slot][a] != categoryCounts[slot][b] ? categoryCounts[slot][a] < categoryCounts[slot][b]
                        : values[slot].names[a] > values[slot].names[b]
                }
                feature.fill = best.map { values[slot].names[$0] }
            case .constant(let text): feature.fill = text
            default: break
            }
        }
        offset += feature.width
        features.append(feature)
    }
    var classNames: [String] = []
    var targetMeans: [Double] = []
    var targetStds: [Double] = []
    let targetSlots = layout.features.count..<columns.count
    if table.target.type.value == .category {
        // Every class either split names: a test row of a class the training split lacks is still scored.
        classNames = values[targetSlots.lowerBound].names.sorted()
        if classNames.count < 2 {
            throw TableError(messages: ["the target column '\(layout.targets[0].name)' has \(classNames.count) class; a classifier needs at least 2"], total: 1)
        }
    } else {
        for slot in targetSlots {
            let n = Double(max(counts[slot], 1))
            let mean = sums[slot] / n
            let variance = max(0, squares[slot] / n - mean * mean)
            targetMeans.append(mean)
            targetStds.append(variance > 0 ? variance.squareRoot() : 1)
        }
    }
    return TablePreprocessing(
        features: features, targetColumns: layout.targets.map(\.name), targetType: table.target.type.value, classNames: classNames,
        targetMeans: targetMeans, targetStds: targetStds, inputWidth: offset, delimiter: table.delimiter.value,
        header: table.header.value, missingValues: table.missingValues.isEmpty ? nil : table.missingValues.map(\.value))
}

/// Encodes raw rows (as `readTableRows` stores them) into model inputs, from plain per-column arrays:
/// it runs for every cell of the file, and reading `TablePreprocessing.Feature` values there would
/// retain and release their strings each time.
final class TableRowEncoder: @unchecked Sendable {
    let count: Int
    let kinds: UnsafeMutablePointer<UInt8>
    let offsets: UnsafeMutablePointer<Int>
    let widths: UnsafeMutablePointer<Int>
    let means: UnsafeMutablePointer<Double>
    let stds: UnsafeMutablePointer<Double>
    let fills: UnsafeMutablePointer<Float>
    /// Per column, where its category ids' one-hot positions start in `positions`, and how many.
    let positionStarts: UnsafeMutablePointer<Int>
    let positionCounts: UnsafeMutablePointer<Int>
    let positions: UnsafeMutablePointer<Int32>

    /// `categoryIndex[slot]` maps a category id to its one-hot column (-1: not in the vocabulary);
    /// `fills[slot]` is what an empty cell becomes, as the raw rows store it.
    init(_ p: TablePreprocessing, categoryIndex: [[Int32]], fills fillValues: [Float]) {
        count = p.features.count
        let n = max(count, 1)
        kinds = .allocate(capacity: n)
        offsets = .allocate(capacity: n)
        widths = .allocate(capacity: n)
        means = .allocate(capacity: n)
        stds = .allocate(capacity: n)
        fills = .allocate(capacity: n)
        positionStarts = .allocate(capacity: n)
        positionCounts = .allocate(capacity: n)
        let all = categoryIndex.flatMap { $0 }
        positions = .allocate(capacity: max(all.count, 1))
        positions.initialize(from: all, count: all.count)
        var start = 0
        for (slot, feature) in p.features.enumerated() {
            kinds[slot] = feature.type == .number ? 0 : feature.type == .binary ? 1 : 2
            offsets[slot] = feature.offset
            widths[slot] = feature.width
            means[slot] = feature.mean
            stds[slot] = feature.std
            fills[slot] = fillValues[slot]
            positionStarts[slot] = start
            positionCounts[slot] = categoryIndex[slot].count
            start += categoryIndex[slot].count
        }
    }

    deinit {
        for pointer in [UnsafeMutableRawPointer(kinds), UnsafeMutableRawPointer(offsets), UnsafeMutableRawPointer(widths),
            UnsafeMutableRawPointer(means), UnsafeMutableRawPointer(stds), UnsafeMutableRawPointer(fills),
            UnsafeMutableRawPointer(positionStarts), UnsafeMutableRawPointer(positionCounts), UnsafeMutableRawPointer(positions)]
        {
            pointer.deallocate()
        }
    }

    /// Encodes one raw row into `out` (the preprocessing's `inputWidth` floats, every one written).
    @inline(__always) func encode(_ row: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        for slot in 0..<count {
            var v = row[slot]
            if v.isNaN { v = fills[slot] }
            switch kinds[slot] {
            case 0:
                out[offsets[slot]] = Float((Double(v) - means[slot]) / stds[slot])
            case 1:
                out[offsets[slot]] = v
            default:
                let destination = out + offsets[slot]
                let width = widths[slot]
                destination.update(repeating: 0, count: width)
                // An id the training split never saw (or a fill it did not) counts in the last column.
                let id = Int(v)
                let index = id >= 0 && id < positionCounts[slot] ? Int(positions[positionStarts[slot] + id]) : -1
                destination[index >= 0 ? index : width - 1] = 1
            }
        }
    }
}
