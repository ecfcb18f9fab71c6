import DataSources
import Execution
import Files
import Foundation
import Planner

extension LoadedModel {
    /// The model's answer for every row of `data`, `plan.classes` values a row: a classifier trained
    /// with cross-entropy gives class probabilities (the softmax of its outputs), with mse its outputs;
    /// a regressor its predictions in the target's units. Throws when an output is not finite.
    public func predictTable(_ data: TableDataset) throws -> [Double] {
        try checkDataset(data, fits: plan)
        let width = plan.classes
        var result = [Double](repeating: 0, count: data.count * width)
        var probabilities = [Float](repeating: 0, count: plan.evalBatchSize * width)
        let scales = data.targetStds, offsets = data.targetMeans
        var failure: Error?
        data.withBatchSamples { samples in
            guard let samples else { return }
            let order = (0..<Int32(data.count)).map { $0 }
            order.withUnsafeBufferPointer { order in
                var start = 0
                while start < order.count && failure == nil {
                    let rows = min(plan.evalBatchSize, order.count - start)
                    let batch = StepExecutor.BatchSource(samples: samples, indices: order.baseAddress! + start, rows: rows)
                    _ = executor.evaluate(batch)
                    do {
                        try requireFiniteOutputs(rows: rows) { "row \(start + $0 + 1) of \(data.origin)" }
                    } catch {
                        failure = error
                        return
                    }
                    let outputs = executor.evalLogits
                    if plan.isRegression {
                        for i in 0..<(rows * width) {
                            let j = i % width
                            result[start * width + i] = Double(outputs[i]) * (j < scales.count ? scales[j] : 1) + (j < offsets.count ? offsets[j] : 0)
                        }
                    } else if outputsAreLogits {
                        probabilities.withUnsafeMutableBufferPointer { executor.kernels.softmaxRows(outputs, rows, width, $0.baseAddress!) }
                        for i in 0..<(rows * width) { result[start * width + i] = Double(probabilities[i]) }
                    } else {
                        for i in 0..<(rows * width) { result[start * width + i] = Double(outputs[i]) }
                    }
                    start += rows
                }
            }
        }
        if let failure { throw failure }
        return result
    }

    /// A table model's test metrics on `data` (which has the target columns): a classifier's accuracy
    /// and confusion matrix, a regressor's MAE, RMSE and R².
    public func evaluateTable(_ data: TableDataset) throws -> Trainer.Evaluation {
        guard plan.isRegression else { return try evaluate(data) }
        try checkDataset(data, fits: plan)
        _ = try predictTable(data)  // the finiteness check, batch by batch
        return evaluateRegressor(executor, data, indices: (0..<Int32(data.count)).map { $0 })
    }
}

/// A CSV field as RFC 4180 writes it: quoted when it holds the delimiter, a quote or a line break.
public func csvField(_ text: String, delimiter: Character = ",") -> String {
    guard text.contains(where: { $0 == delimiter || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
    return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

/// The CSV `mlpc predict --csv` writes: the input's line, the prediction, then (a classifier) each
/// class's probability or output, or (a regressor) nothing more; with the true target when the input has it.
public func predictionCSV(
    preprocessing p: TablePreprocessing, encoded: EncodedTable, outputs: [Double], outputsAreProbabilities: Bool
) -> String {
    let width = p.outputWidth
    var header = ["line"]
    if p.isClassifier {
        header.append("predicted_\(p.targetColumns[0])")
        if encoded.hasTargets { header.append("true_\(p.targetColumns[0])") }
        header += p.classNames.map { (outputsAreProbabilities ? "p_" : "output_") + $0 }
    } else {
        header += p.targetColumns.map { "predicted_\($0)" }
        if encoded.hasTargets { header += p.targetColumns.map { "true_\($0)" } }
    }
    var out = header.map { csvField($0) }.joined(separator: ",") + "\n"
    var trueValues: [Float] = []
    var labels: [Int32] = []
    switch encoded.dataset.targets {
    case .values(let values, _): trueValues = values
    case .classes(let values, _): labels = values
    }
    for r in 0..<encoded.dataset.count {
        let row = Array(outputs[(r * width)..<((r + 1) * width)])
        var fields = [String(encoded.lines[r])]
        if p.isClassifier {
            let best = row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) } ?? 0
            fields.append(csvField(p.classNames[best]))
            if encoded.hasTargets { fields.append(csvField(p.classNames[Int(labels[r])])) }
            fields += row.map { String(format: "%.6g", $0) }
        } else {
            fields += row.map { String(format: "%.7g", $0) }
            if encoded.hasTargets {
                fields += (0..<width).map { String(format: "%.7g", Double(trueValues[r * width + $0]) * p.targetStds[$0] + p.targetMeans[$0]) }
            }
        }
        out += fields.joined(separator: ",") + "\n"
    }
    return out
}
