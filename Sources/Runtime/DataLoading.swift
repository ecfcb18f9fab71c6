import Figures
import Files
import DataSources
import Execution
import Foundation
import Planner
import SpecParser

/// The data a run trains and evaluates on, with where it came from.
public struct LoadedData {
    public var train: any Dataset
    public var test: any Dataset
    public var directory: String
    /// File name without ".gz" -> SHA-256 of the decompressed bytes (as in SHA256SUMS.raw), for run.json.
    public var sha256: [String: String]
    /// A table's preprocessing, saved with the model.
    public var tablePreprocessing: TablePreprocessing? = nil
}


/// Loads the plan's dataset (downloading missing MNIST files first when the directory is MNIST's),
/// verifies it and checks it against the plan: image shape, classes, counts.
public func loadData(plan: Plan, log: (String) -> Void) throws -> LoadedData {
    let directory = plan.data.directory
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), !isDirectory.boolValue {
        throw RuntimeError.data("\(pathForMessage(directory)): the data directory is a file, not a directory")
    }
    try ensureMNIST(directory: directory, log: log)
    let probe = probeDataset(directory: directory)
    if let problem = probe.problems.first { throw problem }
    guard let imagesHeader = probe.files.first(where: { $0.role == .trainImages })?.header else {
        throw DatasetError.missingFiles(directory: directory, names: [IDXDatasetLayout.mnist.trainImages])
    }
    let imageShape = Array(imagesHeader.dimensions.dropFirst())
    guard acceptsImageShape(imageShape, input: plan.inputShape) else {
        throw DatasetError.shapeMismatch(path: imagesHeader.path, expected: plan.inputShape, actual: imageShape)
    }
    let dataset = try IDXDataset.load(directory: directory, classCount: plan.classes, imageShape: imageShape)
    var sums: [String: String] = [:]
    for file in dataset.files { sums[IDXDatasetLayout.mnist.name(of: file.role)] = file.sha256.hex }
    // Recorded absolute (run.json, checkpoint, model): eval and --resume may run from another folder.
    return LoadedData(train: dataset.train, test: dataset.test, directory: absolutePath(directory), sha256: sums)
}

/// What `mlpc check` learns from the data directory's headers (and the small label files) before any
/// training: each problem as a diagnostic pointing at the spec line it concerns. `directorySource`
/// names where the directory came from when not from the spec's data.dir ("--data-dir",
/// "MLPC_DATA_DIR"): the problems with the directory then point at no spec line, and say so.
public func dataDiagnostics(spec: Spec, plan: Plan, directorySource: String? = nil) -> [Diagnostic] {
    let directory = plan.data.directory
    let dirLocation = directorySource == nil ? spec.data.directory.location : nil
    let origin = directorySource.map { " (the data directory given by \($0))" } ?? ""
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
        return [
            .warning(
                "W0401", "the data directory \(pathForMessage(directory))\(origin) does not exist yet; `mlpc run` will download MNIST into it",
                at: dirLocation)
        ]
    }
    guard isDirectory.boolValue else {
        return [.error("E0401", "the data directory \(pathForMessage(directory))\(origin) is a file, not a directory", at: dirLocation)]
    }
    var diagnostics: [Diagnostic] = []
    let probe = probeDataset(directory: directory)
    for problem in probe.problems {
        switch problem {
        case .missingFiles:
            diagnostics.append(.warning("W0402", "\(problem)\(origin); `mlpc run` will download them", at: dirLocation))
        default:
            diagnostics.append(.error("E0402", "\(problem)\(origin)", at: dirLocation))
        }
    }
    let header = { (role: DatasetFileRole) in probe.files.first { $0.role == role }?.header }
    for role in [DatasetFileRole.trainImages, .testImages] {
        guard let images = header(role) else { continue }
        let imageShape = Array(images.dimensions.dropFirst())
        if !acceptsImageShape(imageShape, input: plan.inputShape) {
            diagnostics.append(
                .error(
                    "E0403",
                    "the images in \(pathForMessage(images.path)) are \(shapeText(imageShape)), but the model's input_shape is \(shapeText(plan.inputShape))",
                    at: spec.model.inputShape.location, notes: [DiagnosticNote(directorySource.map { "the data comes from the directory given by \($0)" } ?? "the data comes from here", at: dirLocation)]))
        }
    }
    let finalLayer = spec.model.layers.last { if case .linear = $0.kind { return true } else { return false } }
    for role in [DatasetFileRole.trainLabels, .testLabels] {
        guard let labels = header(role), labels.dimensions.count == 1, let file = try? IDXFile.read(path: labels.path),
            let (index, label) = file.data.enumerated().first(where: { Int($0.element) >= plan.classes })
        else { continue }
        var notes: [DiagnosticNote] = []
        if let finalLayer { notes.append(DiagnosticNote("the final layer '\(finalLayer.name.value)' has \(plan.classes) outputs", at: finalLayer.location)) }
        diagnostics.append(
            .error(
                "E0404",
                "\(pathForMessage(labels.path)): label \(label) of example \(index) does not fit the model's \(plan.classes) classes (labels 0...\(plan.classes - 1))",
                at: spec.loss.kind.location, notes: notes))
    }
    if let trainCount = header(.trainImages)?.dimensions.first {
        let held = Int((Double(trainCount) * spec.data.validationFraction.value).rounded(.down))
        let n = trainCount - held
        let b = plan.batchSize
        // (The data's own checks refuse an empty training set, and validation_fraction < 1 always leaves
        // an example.)
        if spec.training.dropLast.value && n < b {
            diagnostics.append(
                .error(
                    "E0405", noTrainingStepReason(spec: spec, batchSize: b, examples: n), at: spec.training.batchSize.location,
                    notes: [DiagnosticNote("drop_last is set here", at: spec.training.dropLast.location)]))
        } else if n % b != 0 {
            if let error = oneRowBatchNormError(plan: plan, spec: spec, examples: n, batchSize: b) {
                diagnostics.append(
                    .error(
                        "E0406", error.message, at: error.layer.location,
                        notes: [DiagnosticNote("the batch size is set here", at: spec.training.batchSize.location)],
                        suggestion: error.fix))
            }
            if spec.training.dropLast.value {
                diagnostics.append(
                    .warning(
                        "W0403", "drop_last skips the last \(n % b) training images of every epoch (\(n) % \(b) = \(n % b))",
                        at: spec.training.dropLast.location))
            } else {
                diagnostics.append(
                    .warning(
                        "W0403", "the last batch of every epoch is partial: \(n) % \(b) = \(n % b) images",
                        at: spec.training.batchSize.location, suggestion: "set `drop_last: true` to skip it"))
            }
        }
        let images = header(.trainImages).map { $0.dataLength } ?? 0
        let testImages = header(.testImages).map { $0.dataLength } ?? 0
        let needed = plan.arenaBytes + images + testImages
        // When the arena alone is too large, the planner's E0501 says so already.
        if needed > plan.target.memoryBytes && plan.arenaBytes <= plan.target.memoryBytes {
            diagnostics.append(
                .error(
                    "E0502",
                    "training needs \(formatBytes(needed)) (arena \(formatBytes(plan.arenaBytes)) and images \(formatBytes(images + testImages))) but this machine has \(formatBytes(plan.target.memoryBytes))",
                    at: spec.training.batchSize.location))
        }
    }
    return diagnostics
}

/// Sizes the batches by what the data in the spec's directory can fill, from its headers: a training
/// batch holds at most the training examples (the training set less those held out for validation),
/// an evaluation batch at most the larger of the test set and the held-out set. A batch larger than
/// that gathers the same rows (one batch an epoch, one an evaluation) and would only make the arena
/// larger. Each lowered size comes with a warning at its spec line. Nothing changes when the headers
/// cannot be read (the loader reports why), or with `drop_last`, where a batch larger than the
/// training set means no step at all (E0405).
public func fitBatchesToData(_ spec: inout Spec) -> [Diagnostic] {
    let probe = probeDataset(directory: spec.data.resolvedDirectory)
    let count = { (role: DatasetFileRole) in probe.files.first { $0.role == role }?.count }
    guard let trainCount = count(.trainImages), let testCount = count(.testImages) else { return [] }
    return fitBatches(&spec, trainCount: trainCount, testCount: testCount)
}

/// `fitBatchesToData` for data whose counts are known (a dataset just loaded).
public func fitBatches(_ spec: inout Spec, trainCount: Int, testCount: Int) -> [Diagnostic] {
    var diagnostics: [Diagnostic] = []
    let held = Int((Double(trainCount) * spec.data.validationFraction.value).rounded(.down))
    let examples = trainCount - held
    let batch = spec.training.batchSize.value
    if !spec.training.dropLast.value && examples >= 1 && batch > examples {
        let setting = spec.training.batchSizeOverride.map { "\($0.flag) \(batch)" } ?? "batch_size \(batch)"
        diagnostics.append(
            .warning(
                "W0404",
                "\(setting) is larger than the \(examples) training examples: each epoch is one batch of \(examples), and the batch buffers are sized for \(examples)",
                at: spec.training.batchSize.location))
        spec.training.batchSize.value = examples
    }
    let evaluated = max(testCount, held)
    let evalBatch = spec.training.evalBatchSize.value
    if evaluated >= 1 && evalBatch > evaluated {
        diagnostics.append(
            .warning(
                "W0404",
                "eval_batch_size \(evalBatch) is larger than the \(evaluated) \(held > testCount ? "held-out" : "test") examples: evaluation runs in batches of \(evaluated), and its buffers are sized for that",
                at: spec.training.evalBatchSize.location))
        spec.training.evalBatchSize.value = evaluated
    }
    return diagnostics
}

/// Why an epoch would have no training step: no examples, or fewer than one batch with drop_last.
func noTrainingStepReason(spec: Spec, batchSize: Int, examples: Int) -> String {
    if examples == 0 { return "no training step would run: the training set is empty" }
    // A batch size given with --batch-size is named as such: the spec's batch_size is not the one used.
    let setting = spec.training.batchSizeOverride.map { "\($0.flag) \(batchSize)" } ?? "batch_size \(batchSize)"
    let lower = spec.training.batchSizeOverride.map { "\($0.flag)" } ?? "batch_size"
    return "no training step would run: drop_last drops the only, partial batch (\(examples) training examples, \(setting)); "
        + "lower \(lower) to \(examples) or less, or set drop_last: false"
}

/// A batch_norm after a linear (one value per channel and row) given a training batch of one row:
/// its batch variance would be 0 / 0, which PyTorch refuses ("Expected more than 1 value per channel when
/// training"). With several ranks each normalizes its own share of a batch, and a batch of `rows` rows
/// leaves some rank exactly one when 1 <= rows < 2 x ranks (`DataParallel.share`), a full batch as well
/// as the last. Nil when there is no such layer or no batch gives a rank one row.
func oneRowBatchNormError(plan: Plan, spec: Spec, examples: Int, batchSize b: Int) -> (message: String, fix: String, layer: BatchNormForward)? {
    let ranks = plan.ranks
    func givesOneRow(_ rows: Int) -> Bool { rows >= 1 && rows < 2 * ranks }
    let last = spec.training.dropLast.value ? 0 : examples % b
    // A batch of one row in one process is E0301's, found without the data.
    let fullBatch = b > 1 && givesOneRow(b) && examples >= b
    guard b > 1, fullBatch || givesOneRow(last) else { return nil }
    let layer = plan.trainKernels.lazy.compactMap { kernel -> BatchNormForward? in
        if case .batchNormForward(let k) = kernel, k.isTraining, k.geometry.spatial == 1 { return k }
        return nil
    }.first
    guard let layer else { return nil }
    let setting = spec.training.batchSizeOverride.map { "\($0.flag) \(b)" } ?? "batch_size \(b)"
    // The nearest batch size whose batches all give every rank two rows or more (or none, for the last).
    let fits = { (size: Int) in size >= 2 * ranks && !givesOneRow(spec.training.dropLast.value ? 0 : examples % size) }
    let other = (1...max(b, 2 * ranks)).lazy.flatMap { [b + $0, b - $0] }.first { $0 >= 2 && fits($0) } ?? 2 * ranks
    if ranks == 1 {
        return (
            "batch_norm layer '\(layer.layer)' would train on a last batch of 1 row (\(examples) training examples, \(setting): \(examples) % \(b) = 1), where each feature's batch variance is 0 / 0",
            "set `drop_last: true`, or a batch_size whose last batch is not 1 row (\(other))", layer
        )
    }
    let rows = fullBatch ? b : last
    let batch = fullBatch ? "every batch of \(b) rows" : "the last batch of \(last) rows (\(examples) training examples, \(setting): \(examples) % \(b) = \(last))"
    return (
        "batch_norm layer '\(layer.layer)' would train on a share of 1 row: \(ranks) ranks split \(batch) into shares of \((0..<ranks).map { String(plan.dataParallel?.share(rows: rows, rank: $0).count ?? rows) }.joined(separator: ", ")), and each rank normalizes its own share, where a share of one row has each feature's batch variance 0 / 0",
        (fullBatch ? "" : "set `drop_last: true`, or ") + "a batch_size that gives every rank 2 rows or more (\(other)), or fewer ranks", layer
    )
}
