import ArgumentParser
import Foundation
import Runtime

/// The model-reading arguments `eval` and `predict` share.
struct ModelOptions: ParsableArguments {
    @Argument(help: "The model: a model.safetensors (or a run directory holding one).")
    var model: String

    @Option(help: "Use this spec instead of the one stored in the model (needed for a weights.safetensors).")
    var spec: String?

    @Option(name: .customLong("data-dir"), help: "Dataset directory (default: $MLPC_DATA_DIR, else where the model was trained).")
    var dataDir: String?

    @Option(help: "Worker threads (default: the spec's training.threads, else all cores).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 || threads > 1024 { throw ValidationError("--threads must be between 1 and 1024") }
    }

    var dataDirectoryOverride: String? {
        if let dataDir { return dataDir }
        if let env = ProcessInfo.processInfo.environment["MLPC_DATA_DIR"], !env.isEmpty { return env }
        return nil
    }

    /// Loads the model; a problem with the file is an invalid input (status 1), naming the file.
    func load() throws -> LoadedModel {
        let kernels = try selectedKernels()
        do {
            return try LoadedModel(
                path: model, specPath: spec, dataDirectoryOverride: dataDirectoryOverride, threads: threads, kernels: kernels)
        } catch {
            throw CommandFailure.invalid("mlpc: error: \(error)")
        }
    }

    /// The model's test set, checked against its input shape and classes.
    func testSet(of loaded: LoadedModel) throws -> LabeledImages {
        do {
            return try loadDatasetSplit(
                directory: loaded.spec.data.resolvedDirectory, split: .test, classCount: loaded.plan.classes,
                inputShape: loaded.plan.inputShape)
        } catch {
            throw CommandFailure.invalid("mlpc: error: \(error)")
        }
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a trained model on the test set: accuracy with its 95% confidence interval, per-class accuracy and the confusion matrix.",
        discussion: "Exit status: 0 evaluated, 1 the model or the data is unusable, 2 unusable arguments."
    )

    @OptionGroup var options: ModelOptions

    func run() throws {
        let loaded = try options.load()
        let test = try options.testSet(of: loaded)
        let evaluation = loaded.evaluate(test)
        print(formatEvaluation(evaluation, labels: test.labels, classes: loaded.plan.classes, name: loaded.path), terminator: "")
    }
}

/// The report `mlpc eval` prints: overall accuracy with its interval, each class's accuracy, and the
/// confusion matrix with true classes as rows.
func formatEvaluation(_ evaluation: Trainer.Evaluation, labels: [UInt8], classes: Int, name: String) -> String {
    let ci = accuracyConfidence95(correct: evaluation.correct, total: evaluation.total)
    var out = String(
        format: "Accuracy: %.2f%% (95%% CI ±%.2f) on %d test images (%@)\n", evaluation.accuracy, ci, evaluation.total, name)
    out += "\nper class:\n"
    for c in 0..<classes {
        let row = evaluation.confusion[c]
        let total = row.reduce(0, +)
        let right = row[c]
        let percent = total > 0 ? 100 * Double(right) / Double(total) : 0
        out += String(format: "  %2d: %6.2f%%  (%d/%d)\n", c, percent, right, total)
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
