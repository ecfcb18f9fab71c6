import Files
import Foundation
import SpecParser

/// Rows of a CSV file encoded the way a trained model's rows were (its saved `TablePreprocessing`):
/// what `mlpc predict --csv` and `mlpc eval --csv` run the model on.
public struct EncodedTable {
    /// Inputs, and the targets when the file has the target columns (else zeros: labels 0, or values 0).
    public var dataset: TableDataset
    public var hasTargets: Bool
    /// The file line each row starts on.
    public var lines: [Int]
}

/// Reads and encodes `path` with `preprocessing`: the columns found by name (any order, others
/// ignored), each cell checked as in training (located errors, collected), empty cells filled as the
/// model was trained to fill them. A column the model was trained to drop rows for cannot be empty here.
public func encodeTableFile(path: String, preprocessing p: TablePreprocessing, requireTargets: Bool, memoryBytes: Int) throws -> EncodedTable {
    let format = CSVFormat(delimiter: p.delimiter, header: p.header, missingValues: p.missingValues ?? [])
    let header = try readTableHeader(path: path, format: format)
    var positions: [String: Int] = [:]
    for (index, name) in header.enumerated() where positions[name] == nil { positions[name] = index }
    var messages: [String] = []
    func position(_ name: String, _ role: String) -> Int? {
        if let at = positions[name] { return at }
        let help = suggestion(for: name, among: header).map { " (did you mean '\($0)'?)" } ?? ""
        messages.append("\(pathForMessage(path)):1: no column '\(name)', the model's \(role)\(help)")
        return nil
    }
    var features: [TableLayout.Column] = []
    for feature in p.features {
        let missing: MissingValues
        switch feature.missing {
        case "mean": missing = .mean
        case "mode": missing = .mode
        case "constant": missing = .constant(feature.fill ?? "")
        default: missing = .error
        }
        if let at = position(feature.name, "\(feature.type.rawValue) feature") {
            features.append(TableLayout.Column(name: feature.name, type: feature.type, missing: missing, position: at))
        }
    }
    let hasTargets = p.targetColumns.allSatisfy { positions[$0] != nil }
    var targets: [TableLayout.Column] = []
    if hasTargets || requireTargets {
        for name in p.targetColumns {
            if let at = position(name, "target") {
                targets.append(TableLayout.Column(name: name, type: p.targetType, missing: .error, position: at))
            }
        }
    }
    if !messages.isEmpty { throw TableError(messages: messages, total: messages.count) }
    let layout = TableLayout(features: features, targets: targets, fields: header.count, header: header)
    let columns = features + targets
    var values = [InternedValues](repeating: InternedValues(), count: columns.count)
    var problems = TableProblems()
    let raw = RawRows(width: columns.count, limitBytes: memoryBytes)
    raw.lines = []
    try readTableRows(path: path, format: format, layout: layout, into: raw, values: &values, problems: &problems)
    if problems.total > 0 { throw TableError(messages: problems.messages, total: problems.total) }

    var categoryIndex: [[Int32]] = []
    var fills: [Float] = []
    for (slot, feature) in p.features.enumerated() {
        if feature.type == .category, let fill = feature.fill { _ = values[slot].id(of: fill) }
        let vocabulary = Dictionary(uniqueKeysWithValues: feature.vocabulary.enumerated().map { ($1, Int32($0)) })
        categoryIndex.append(values[slot].names.map { vocabulary[$0] ?? -1 })
        switch (feature.type, feature.fill) {
        case (_, nil): fills.append(.nan)
        case (.number, let fill?): fills.append(Float(Double(fill) ?? .nan))
        case (.binary, let fill?): fills.append(binaryTrue.contains(fill.lowercased()) ? 1 : 0)
        case (.category, let fill?): fills.append(Float(values[slot].ids[fill]!))
        }
    }
    var classIndex: [Int32] = []
    if hasTargets && p.isClassifier {
        let slot = features.count
        let known = Dictionary(uniqueKeysWithValues: p.classNames.enumerated().map { ($1, Int32($0)) })
        classIndex = try values[slot].names.map { name in
            guard let index = known[name] else {
                let row = (0..<raw.rows).first { Int(raw.row($0)[slot]) == Int(values[slot].ids[name]!) } ?? 0
                throw TableError(
                    messages: ["\(pathForMessage(path)):\(raw.lines?[row] ?? 0): '\(name)' in column '\(p.targetColumns[0])' is not one of the model's classes (\(p.classNames.prefix(10).joined(separator: ", "))\(p.classNames.count > 10 ? ", ..." : ""))"],
                    total: 1)
            }
            return index
        }
    }
    let width = p.inputWidth
    var inputs = [Float](repeating: 0, count: raw.rows * width)
    var labels = [Int32](repeating: 0, count: raw.rows)
    var targetValues = [Float](repeating: 0, count: p.isClassifier ? 0 : raw.rows * p.targetColumns.count)
    let encoder = TableRowEncoder(p, categoryIndex: categoryIndex, fills: fills)
    inputs.withUnsafeMutableBufferPointer { out in
        for r in 0..<raw.rows {
            let row = raw.row(r)
            encoder.encode(row, into: out.baseAddress! + r * width)
            guard hasTargets else { continue }
            if p.isClassifier {
                labels[r] = classIndex[Int(row[features.count])]
            } else {
                for t in 0..<p.targetColumns.count {
                    targetValues[r * p.targetColumns.count + t] = Float((Double(row[features.count + t]) - p.targetMeans[t]) / p.targetStds[t])
                }
            }
        }
    }
    let targetsOut: Targets = p.isClassifier ? .classes(labels, classes: p.classNames.count) : .values(targetValues, width: p.targetColumns.count)
    let dataset = TableDataset(
        count: raw.rows, sampleShape: [width], samples: .float32(inputs), targets: targetsOut, origin: pathForMessage(path),
        targetMeans: p.targetMeans, targetStds: p.targetStds, classNames: p.classNames)
    return EncodedTable(dataset: dataset, hasTargets: hasTargets, lines: raw.lines ?? [])
}
