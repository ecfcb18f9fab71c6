import ArgumentParser
import Foundation
import Execution
import DataSources
import Files
import Figures
import Runtime

/// The model-reading arguments `eval` and `predict` share.
struct ModelOptions: ParsableArguments {
    @Argument(help: "The model: a model.safetensors (or a run directory holding one).")
    var model: String

    @Option(help: "Use this spec instead of the one stored in the model (needed for a weights.safetensors).")
    var spec: String?

    @Option(name: .customLong("data-dir"), help: "Dataset directory (default: $MLPC_DATA_DIR, else where the model was trained).")
    var dataDir: String?

    @Option(parsing: .unconditional, help: "Worker threads (default: the spec's training.threads, else all cores).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 || threads > 1024 { throw ValidationError("--threads must be between 1 and 1024") }
        for (flag, path) in [("the model path", model), ("--spec", spec), ("--data-dir", dataDir)] where path?.isEmpty == true {
            throw ValidationError("\(flag) is empty")
        }
    }

    /// --data-dir, else $MLPC_DATA_DIR, else nil: the directory the model file records.
    var dataDirectoryOverride: String? {
        dataDirectoryFromFlagOrEnvironment(dataDir)
    }

    /// Loads the model. A path that cannot be read is an unusable argument (status 2); a file that is
    /// not a usable model is invalid input (status 1). Both messages name the file.
    func load() throws -> LoadedModel {
        let kernels = try selectedKernels()
        do {
            return try LoadedModel(
                path: model, specPath: spec, dataDirectoryOverride: dataDirectoryOverride, threads: threads, kernels: kernels)
        } catch {
            throw commandFailure(for: error)
        }
    }

    /// The model's test set, checked against its input shape and classes. A data directory given on
    /// the command line (or in $MLPC_DATA_DIR) that is not a directory is an unusable argument.
    func testSet(of loaded: LoadedModel) throws -> LabeledImages {
        let directory = loaded.plan.data.directory
        if let given = dataDirectoryOverride {
            let source = dataDir != nil ? "--data-dir" : "MLPC_DATA_DIR"
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: given, isDirectory: &isDirectory) else {
                throw CommandFailure.usage("\(source) \(given): no such directory")
            }
            guard isDirectory.boolValue else { throw CommandFailure.usage("\(source) \(given): is not a directory") }
        }
        do {
            return try loadDatasetSplit(
                directory: directory, split: .test, classCount: loaded.plan.classes, inputShape: loaded.plan.inputShape)
        } catch {
            // Without an override the directory is the one the model file recorded: text from a file,
            // shown escaped wherever the message quotes it.
            var message = "\(error)"
            if dataDirectoryOverride == nil, !directory.isEmpty, escapedForMessage(directory) != directory {
                message = message.replacingOccurrences(of: directory, with: escapedForMessage(directory))
            }
            throw CommandFailure.invalid("mlpc: error: " + message)
        }
    }
}

/// How `eval`, `predict` and `show` report a failure, as the README's exit statuses say: a path that
/// cannot be read (missing, a directory, not a regular file, no permission) is status 2, like any
/// unusable argument; a file whose content is unusable is status 1.
func commandFailure(for error: Error) -> CommandFailure {
    if error is FileAccessError { return .usage("\(error)") }
    return .invalid("mlpc: error: \(error)")
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a trained model on the test set: accuracy with its 95% confidence interval, per-class accuracy and the confusion matrix.",
        discussion: """
            Exit status: 0 evaluated; 1 the model or the data is unusable (including a model whose outputs are not finite); \
            2 unusable arguments, or a path that does not exist or cannot be read.
            """
    )

    @OptionGroup var options: ModelOptions

    @Option(help: "Evaluate a table model on the rows of this CSV file (with its target columns).")
    var csv: String?

    func run() throws {
        let loaded = try options.load()
        if let csv {
            try evaluateTable(loaded, csv: csv)
            return
        }
        if loaded.tablePreprocessing != nil {
            throw CommandFailure.usage("\(loaded.path): the model was trained on a table: give the rows to evaluate on with --csv FILE")
        }
        let test = try options.testSet(of: loaded)
        let evaluation: Trainer.Evaluation
        do {
            evaluation = try loaded.evaluate(test)
        } catch {
            throw commandFailure(for: error)
        }
        print(formatEvaluation(evaluation, classes: loaded.plan.classes, name: loaded.path), terminator: "")
    }
}

extension EvalCommand {
    func evaluateTable(_ loaded: LoadedModel, csv: String) throws {
        guard let preprocessing = loaded.tablePreprocessing else {
            throw CommandFailure.usage("\(loaded.path): the model was not trained on a table (no preprocessing in its metadata), so it cannot read --csv")
        }
        let evaluation: Trainer.Evaluation
        do {
            let encoded = try encodeTableFile(
                path: csv, preprocessing: preprocessing, requireTargets: true, memoryBytes: Int(ProcessInfo.processInfo.physicalMemory))
            evaluation = try loaded.evaluateTable(encoded.dataset)
        } catch {
            throw commandFailure(for: error)
        }
        if let r = evaluation.regression {
            print(String(format: "MAE: %.6g, RMSE: %.6g, R²: %.4f on %d rows (%@)", r.mae, r.rmse, r.r2, evaluation.total, csv))
        } else {
            print(formatEvaluation(evaluation, classes: loaded.plan.classes, name: csv, classNames: preprocessing.classNames, what: "rows"), terminator: "")
        }
    }
}

/// The report `mlpc eval` prints: overall accuracy with its interval, each class's accuracy, and the
/// confusion matrix with true classes as rows.
func formatEvaluation(
    _ evaluation: Trainer.Evaluation, classes: Int, name: String, classNames: [String] = [], what: String = "test images"
) -> String {
    let ci = accuracyConfidence95(correct: evaluation.correct, total: evaluation.total)
    var out = String(
        format: "Accuracy: %.2f%% (95%% CI ±%.2f) on %d %@ (%@)\n", evaluation.accuracy, ci, evaluation.total, what, name)
    if classNames.count == classes {
        out += "\nclasses: " + classNames.enumerated().map { "\($0) \($1)" }.joined(separator: ", ") + "\n"
    }
    out += "\nper class:\n"
    for c in 0..<classes {
        let row = evaluation.confusion[c]
        let total = row.reduce(0, +)
        guard total > 0 else {
            // A percentage of nothing would read as a class the model always gets wrong.
            out += String(format: "  %2d:     n/a   (no test images)\n", c)
            continue
        }
        let right = row[c]
        out += String(format: "  %2d: %6.2f%%  (%d/%d)\n", c, 100 * Double(right) / Double(total), right, total)
    }
    out += "\nconfusion matrix (rows: true class, columns: predicted):\n"
    let width = max(3, String(evaluation.confusion.flatMap { $0 }.max() ?? 0).count + 1)
    func cell(_ text: String) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
    out += String(repeating: " ", count: width + 1) + (0..<classes).map { cell(String($0)) }.joined() + "\n"
    for c in 0..<classes {
        out += cell(String(c)) + " " + evaluation.confusion[c].map { cell(String($0)) }.joined() + "\n"
    }
    return out
}
