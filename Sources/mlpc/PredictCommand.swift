import ArgumentParser
import Foundation
import Execution
import DataSources
import Files
import Figures
import Runtime

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Classify PNG images (any size, gray or colour) or test-set images with a trained model; prints the class and each class's probability or output.",
        discussion: """
            A picture is made gray, inverted when its border is light (a dark digit on paper; MNIST digits are white on black), \
            and resized to the model's input (a flat input of n features takes a square picture of sqrt(n) x sqrt(n); \
            one whose n is not a square takes none, only --index).
            For a model trained with cross_entropy each class gets its probability (the softmax of the model's outputs); \
            for another loss (mse) each class gets the model's own output, its bar drawn from the output clamped to [0, 1].
            With --format json the result is one JSON object: the model file, its loss, and for each input its name, the \
            true class of a test image, the predicted class, the final layer's outputs ("logits": for an mse model its own \
            outputs) and their softmax ("probabilities"), each float32 value written so that it reads back exactly. \
            With --csv and --format json: the model, its loss, "kind" (probabilities, outputs or predictions), "columns" (the \
            classes or target columns) and for each row its CSV line, a classifier's predicted class and its "values", exactly.
            Exit status: 0 classified; 1 the model, a picture or the data is unusable (including outputs that are not finite); \
            2 unusable arguments (a picture for a model that takes none), or a path that does not exist or cannot be read.
            """
    )

    @OptionGroup var options: ModelOptions

    @Argument(help: "PNG images to classify.")
    var inputs: [String] = []

    @Option(name: .customLong("index"), parsing: .unconditionalSingleValue, help: "Classify test image N (0-based; repeatable).")
    var indices: [Int] = []

    @Option(help: "Invert pictures: auto (when the border is light), always or never.")
    var invert: Inversion = .auto

    @Option(help: "Output format: text (the class and a bar per class) or json (every output, exactly).")
    var format: TextOrJSONFormat = .text

    @Option(help: "A CSV file of raw rows for a table model (its target columns optional): writes CSV with each row's prediction and class probabilities.")
    var csv: String?

    @Option(help: "With --csv: write the predictions to this file (atomically) instead of stdout.")
    var out: String?

    enum Inversion: String, ExpressibleByArgument, CaseIterable {
        case auto, always, never
        var policy: InversionPolicy {
            switch self {
            case .auto: return .whenBorderIsLight
            case .always: return .always
            case .never: return .never
            }
        }
    }

    func validate() throws {
        if format == .dot { throw ValidationError("predict prints text or json") }
        if csv != nil && (!inputs.isEmpty || !indices.isEmpty) { throw ValidationError("--csv predicts table rows; give it without images or --index") }
        if out != nil && csv == nil { throw ValidationError("--out writes the predictions of --csv") }
        if csv?.isEmpty == true || out?.isEmpty == true { throw ValidationError("--csv and --out need a path") }
        if csv != nil { return }
        if inputs.isEmpty && indices.isEmpty { throw ValidationError("give PNG images to classify, or --index N for a test image") }
        if let negative = indices.first(where: { $0 < 0 }) { throw ValidationError("--index \(negative) is negative") }
    }

    func run() throws {
        let loaded = try options.load()
        if let csv {
            try predictTable(loaded, csv: csv)
            return
        }
        if loaded.tablePreprocessing != nil {
            throw CommandFailure.usage("\(loaded.path): the model was trained on a table: give the rows to predict with --csv FILE")
        }
        // Read every picture before printing anything, so a bad one fails the command cleanly.
        var pictures: [(String, [UInt8])] = []
        if !inputs.isEmpty {
            guard let size = loaded.inputImageSize else {
                throw CommandFailure.usage(
                    "\(loaded.path): the model's input shape \(loaded.plan.inputShape) is not an image (a flat input of \(loaded.plan.inputFeatures) features, not a square), so it cannot classify a picture; use --index N for test images")
            }
            for input in inputs {
                do {
                    let image = try readPNG(path: input, as: .rgb)
                    pictures.append((input, modelInputImage(from: image, width: size.width, height: size.height, inversion: invert.policy).pixels))
                } catch {
                    throw commandFailure(for: error)
                }
            }
        }
        var tests: [(String, [UInt8], Int)] = []
        if !indices.isEmpty {
            let test = try options.testSet(of: loaded)
            for index in indices {
                guard index < test.count else {
                    throw CommandFailure.usage("--index \(index) is out of range: \(test.imagesPath) holds \(test.count) test images (0...\(test.count - 1))")
                }
                tests.append(("test image \(index)", test.image(at: index), Int(test.labels[index])))
            }
        }
        // Classify everything before printing, so a model whose outputs are not finite fails cleanly.
        var results: [(name: String, truth: Int?, scores: ClassScores)] = []
        do {
            for (name, pixels) in pictures { results.append((name, nil, try loaded.classify(pixels: pixels, input: name))) }
            for (name, pixels, truth) in tests { results.append((name, truth, try loaded.classify(pixels: pixels, input: name))) }
        } catch {
            throw commandFailure(for: error)
        }
        switch format {
        case .json: print(try predictionsJSON(results, model: loaded))
        case .text, .dot:
            for result in results {
                print(describe(result.name, result.scores, truth: result.truth, probabilities: loaded.outputsAreLogits))
            }
        }
    }

    /// The machine-readable form of the predictions (`--format json`).
    struct PredictionsReport: Encodable {
        struct Prediction: Encodable {
            var input: String
            var truth: Int?
            var predicted: Int
            var logits: [Float]
            var probabilities: [Float]
        }
        var model: String
        var loss: String
        var predictions: [Prediction]
    }

    func predictionsJSON(_ results: [(name: String, truth: Int?, scores: ClassScores)], model: LoadedModel) throws -> String {
        let report = PredictionsReport(
            model: model.path, loss: model.plan.loss.rawValue,
            predictions: results.map {
                .init(input: $0.name, truth: $0.truth, predicted: $0.scores.predicted, logits: $0.scores.scores, probabilities: $0.scores.probabilities)
            })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(report), as: UTF8.self)
    }

    /// Predictions for the rows of a CSV file, as CSV on stdout or in --out.
    func predictTable(_ loaded: LoadedModel, csv: String) throws {
        guard let preprocessing = loaded.tablePreprocessing else {
            throw CommandFailure.usage("\(loaded.path): the model was not trained on a table (no preprocessing in its metadata), so it cannot read --csv")
        }
        do {
            let encoded = try encodeTableFile(
                path: csv, preprocessing: preprocessing, requireTargets: false, memoryBytes: Int(ProcessInfo.processInfo.physicalMemory))
            let outputs = try loaded.predictTable(encoded.dataset)
            let text =
                format == .json
                ? try tablePredictionsJSON(preprocessing: preprocessing, encoded: encoded, outputs: outputs, model: loaded) + "\n"
                : predictionCSV(preprocessing: preprocessing, encoded: encoded, outputs: outputs, outputsAreProbabilities: loaded.outputsAreLogits)
            if let out {
                try writeFileAtomically(text, to: out)
            } else {
                print(text, terminator: "")
            }
        } catch {
            throw commandFailure(for: error)
        }
    }

    /// The machine-readable form of table predictions (`--csv` with `--format json`).
    struct TablePredictionsReport: Encodable {
        struct Row: Encodable {
            /// The row's line in the CSV file.
            var line: Int
            /// A classifier's predicted class name.
            var predicted: String?
            /// A classifier's class probabilities (cross_entropy) or own outputs (another loss), or a
            /// regressor's predicted targets in their units, in the order of `columns`.
            var values: [Double]
        }
        var model: String
        var loss: String
        /// What `values` holds: probabilities, outputs or predictions.
        var kind: String
        /// The classes or the target columns, in the order of each row's values.
        var columns: [String]
        var rows: [Row]
    }

    func tablePredictionsJSON(preprocessing p: TablePreprocessing, encoded: EncodedTable, outputs: [Double], model: LoadedModel) throws -> String {
        let width = p.outputWidth
        let rows = (0..<encoded.dataset.count).map { r -> TablePredictionsReport.Row in
            let values = Array(outputs[(r * width)..<((r + 1) * width)])
            var predicted: String?
            if p.isClassifier {
                // The first of equal values, as the CSV output chooses.
                let best = values.indices.max { values[$0] < values[$1] || (values[$0] == values[$1] && $0 > $1) } ?? 0
                predicted = p.classNames[best]
            }
            return .init(line: encoded.lines[r], predicted: predicted, values: values)
        }
        let report = TablePredictionsReport(
            model: model.path, loss: model.plan.loss.rawValue,
            kind: p.isClassifier ? (model.outputsAreLogits ? "probabilities" : "outputs") : "predictions",
            columns: p.isClassifier ? p.classNames : p.targetColumns, rows: rows)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(report), as: UTF8.self)
    }

    /// The class, then one line per class: its probability (cross-entropy) or the model's own output
    /// (another loss, whose outputs are not probabilities), with a bar of up to 40 '#'.
    func describe(_ name: String, _ scores: ClassScores, truth: Int?, probabilities: Bool) -> String {
        var out = "\(name): \(scores.predicted)"
        if let truth { out += " (true: \(truth))" }
        out += probabilities ? "\n" : " (outputs, not probabilities)\n"
        for (c, value) in (probabilities ? scores.probabilities : scores.scores).enumerated() {
            // Four decimals for probabilities and ordinary outputs; an mse model's huge output in
            // scientific notation rather than forty digits.
            let number = abs(value) < 1e6 ? String(format: "%.4f", Double(value)) : String(format: "%.4e", Double(value))
            out += String(format: "  %2d: ", c) + number + " " + String(repeating: "#", count: barLength(value)) + "\n"
        }
        return out
    }

    /// Up to 40 '#' for a value clamped to [0, 1]; none for NaN (classify refuses outputs that are not
    /// finite, but the bar must never be the thing that traps).
    func barLength(_ value: Float) -> Int {
        guard value.isFinite else { return 0 }
        return Int((Double(min(max(value, 0), 1)) * 40).rounded())
    }
}
