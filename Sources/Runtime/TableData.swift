import DataSources
import Files
import Foundation
import Planner
import SpecParser

/// A table spec's data as `mlpc check` and `mlpc run` see it: the rows loaded and encoded, and what the
/// spec's model must then be (its input width and output width).
public struct CheckedTable {
    public var table: LoadedTable
    public var data: LoadedData
}

/// Loads the spec's CSV table (the header first, checked against the spec; then every row) and fits
/// the spec to it: a left-out `model.input_shape` becomes the width after one-hot encoding. Problems
/// come back as diagnostics: those about the spec at its lines, those about the rows at theirs in the file.
public func loadTableForSpec(_ spec: inout Spec) -> (table: CheckedTable?, diagnostics: [Diagnostic]) {
    guard let tableSpec = spec.data.table else { return (nil, []) }
    let loaded: LoadedTable
    do {
        loaded = try loadTable(tableSpec, seed: spec.seed.value, memoryBytes: Int(ProcessInfo.processInfo.physicalMemory))
    } catch let error as TableError {
        var diagnostics = error.diagnostics
        for message in error.messages { diagnostics.append(.error("E0412", message, at: nil)) }
        if error.total > error.messages.count + error.diagnostics.count {
            diagnostics.append(.error("E0412", "... and \(error.total - error.messages.count - error.diagnostics.count)\(error.total >= 100_000 ? " or more" : "") more problems in the rows (the first \(error.messages.count) are shown)", at: nil))
        }
        return (nil, diagnostics)
    } catch {
        return (nil, [.error("E0412", "\(error)", at: tableSpec.train.location)])
    }
    var diagnostics: [Diagnostic] = []
    let width = loaded.preprocessing.inputWidth
    if spec.model.inputShape.value.isEmpty {
        spec.model.inputShape.value = [width]
    } else if spec.model.inputShape.value.reduce(1, *) != width {
        diagnostics.append(
            .error(
                "E0413",
                "the table's rows encode to \(width) inputs (after one-hot encoding), but 'model.input_shape' is \(shapeText(spec.model.inputShape.value))",
                at: spec.model.inputShape.location, suggestion: "leave 'input_shape' out: a table spec takes its width from the data"))
    }
    let outputs = loaded.preprocessing.outputWidth
    if let last = spec.model.layers.last(where: { if case .linear = $0.kind { return true } else { return false } }),
        case .linear(let linear) = last.kind, linear.outFeatures.value != outputs
    {
        let what = loaded.preprocessing.isClassifier
            ? "\(outputs) classes (\(loaded.preprocessing.classNames.prefix(8).joined(separator: ", "))\(outputs > 8 ? ", ..." : ""))"
            : "\(outputs) target column\(outputs == 1 ? "" : "s")"
        diagnostics.append(
            .error(
                "E0414", "the final layer '\(last.name.value)' has \(linear.outFeatures.value) outputs, but the target has \(what)",
                at: linear.outFeatures.location, suggestion: "set 'out: \(outputs)'"))
    }
    let data = LoadedData(
        train: loaded.train, test: loaded.test, directory: absolutePath(tableSpec.resolvedTrain), sha256: [:],
        tablePreprocessing: loaded.preprocessing)
    return (CheckedTable(table: loaded, data: data), diagnostics)
}

/// The lines `mlpc check` prints about a table: rows, columns, the encoded width, the targets.
public func tableSummary(_ table: LoadedTable) -> String {
    let p = table.preprocessing
    var out = "data: \(table.fileRows) rows, \(table.fileColumns) columns; \(table.train.count) training rows, \(table.test.count) test rows\n"
    let categories = p.features.filter { $0.type == .category }
    out += "inputs: \(p.inputWidth) after encoding (\(p.features.count) feature columns"
    if !categories.isEmpty {
        out += "; one-hot: " + categories.map { "\($0.name) \($0.vocabulary.count)+1" }.joined(separator: ", ")
    }
    out += ")\n"
    if p.isClassifier {
        out += "target: \(p.targetColumns[0]), \(p.classNames.count) classes: \(p.classNames.prefix(20).joined(separator: ", "))\(p.classNames.count > 20 ? ", ..." : "")\n"
    } else {
        out += "target: \(p.targetColumns.joined(separator: ", ")) (regression)\n"
    }
    return out
}

/// The SHA-256 of a table spec's training file (and test file), keyed by file name (as MNIST's files
/// are; a resumed run's spec names them by another path), for run.json and the checkpoint: a resumed
/// run refuses files that changed since.
public func tableFileSHA256(_ table: TableSpec) throws -> [String: String] {
    var sums: [String: String] = [:]
    let trainName = (table.resolvedTrain as NSString).lastPathComponent
    var files = [(trainName, table.resolvedTrain)]
    if let test = table.resolvedTest {
        let testName = (test as NSString).lastPathComponent
        files.append((testName == trainName ? testName + " (test)" : testName, test))
    }
    for (name, path) in files {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw FileAccessError(path: path, reason: "cannot open") }
        defer { try? handle.close() }
        var hash = SHA256()
        while let block = try handle.read(upToCount: 1 << 20), !block.isEmpty {
            block.withUnsafeBytes { hash.update($0) }
        }
        sums[name] = hash.finalize().hex
    }
    return sums
}
