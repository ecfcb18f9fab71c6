import Figures
import Files
import DataSources
import Execution
import Foundation
import KernelInterface
import Planner
import SpecParser

// Two files hold a trained model:
// - weights.safetensors: the state_dict alone (PyTorch names and shapes), for PyTorch and numpy;
// - model.safetensors: the same tensors plus, in `__metadata__`, the spec's YAML text and its SHA-256,
//   so `mlpc eval` and `mlpc predict` need nothing else.

/// The `__metadata__` keys mlpc writes.
public enum ArtifactMetadataKey {
    /// "mlpc.model" or "mlpc.checkpoint".
    public static let format = "format"
    /// The `format` value of a model file.
    public static let modelFormat = "mlpc.model"
    /// The `format` value of a checkpoint.
    public static let checkpointFormat = "mlpc.checkpoint"
    public static let spec = "spec"
    public static let specSHA256 = "spec_sha256"
    /// Where the spec was read from when training, so messages point at a file the user knows.
    public static let specPath = "spec_path"
    public static let dataDirectory = "data_directory"
    public static let mlpcVersion = "mlpc_version"
    /// The optional planner passes the run turned off (`--disable-pass`), comma-separated; absent when
    /// none were. Evaluating or resuming plans with the same ones, so the numbers are the run's.
    public static let disabledPasses = "disabled_passes"
    /// A table model's preprocessing (means, deviations, vocabularies, class names) as JSON, so that
    /// `predict --csv` and `eval --csv` encode raw rows as training did.
    public static let tablePreprocessing = "table_preprocessing"

    /// The disabled passes of `options` as metadata (nothing when there are none).
    static func disabledPassesEntry(_ options: PlanOptions) -> [String: String] {
        let names = options.disabledPasses.sorted().map(\.rawValue)
        return names.isEmpty ? [:] : [disabledPasses: names.joined(separator: ",")]
    }

    /// The plan options a file's metadata records; an unknown pass name is damage, named with the file.
    static func planOptions(_ metadata: [String: String], path: String) throws -> PlanOptions {
        guard let text = metadata[disabledPasses] else { return PlanOptions() }
        var passes: Set<PlanPass> = []
        for name in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let pass = PlanPass(rawValue: String(name)) else {
                throw ModelFileError(
                    path: path, reason: "its metadata names an unknown planner pass '\(escapedForMessage(String(name)))' in \(disabledPasses)")
            }
            passes.insert(pass)
        }
        return PlanOptions(disabledPasses: passes)
    }
}

/// A model file that cannot be used: unreadable, not a model, a spec that does not load or plan, or
/// tensors that do not fit it. Names the file.
public struct ModelFileError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(pathForMessage(path)): \(reason)" }
}

/// Writes weights.safetensors: the parameters as PyTorch's state_dict, nothing else.
/// With `modelState`, batch norm's running statistics are written too (PyTorch's buffers).
public func writeWeightsFile(plan: Plan, parameters: UnsafePointer<Float>, modelState: UnsafePointer<Float>? = nil, to path: String) throws {
    try SafetensorsFile(tensors: stateDictTensors(plan: plan, block: parameters, modelState: modelState)).write(to: path)
}

/// Writes model.safetensors: the state_dict and the spec that gives it meaning.
public func writeModelFile(
    spec: Spec, plan: Plan, parameters: UnsafePointer<Float>, modelState: UnsafePointer<Float>? = nil, dataDirectory: String,
    mlpcVersion: String, to path: String, tablePreprocessing: TablePreprocessing? = nil
) throws {
    var table: [String: String] = [:]
    if let tablePreprocessing {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        table[ArtifactMetadataKey.tablePreprocessing] = String(decoding: try encoder.encode(tablePreprocessing), as: UTF8.self)
    }
    let metadata = ArtifactMetadataKey.disabledPassesEntry(plan.options).merging(table) { $1 }.merging([
        ArtifactMetadataKey.format: ArtifactMetadataKey.modelFormat,
        ArtifactMetadataKey.spec: spec.resolvedYAML,
        ArtifactMetadataKey.specSHA256: SHA256.hash(Array(spec.resolvedYAML.utf8)).hex,
        ArtifactMetadataKey.specPath: spec.path,
        ArtifactMetadataKey.dataDirectory: dataDirectory,
        ArtifactMetadataKey.mlpcVersion: mlpcVersion,
    ]) { $1 }
    try SafetensorsFile(tensors: stateDictTensors(plan: plan, block: parameters, modelState: modelState), metadata: metadata)
        .write(to: path)
}

/// Reads a safetensors file. A path that cannot be read (missing, a directory, a device or FIFO, no
/// permission) throws `FileAccessError`; damaged content throws `ModelFileError`. Both name the file.
func readSafetensors(path: String, what: String) throws -> SafetensorsFile {
    let bytes = try readRegularFile(path: path, what: "a " + what)
    do {
        return try SafetensorsFile.parse(bytes: bytes, path: path)
    } catch let error as SafetensorsError {
        var parts: [String] = []
        if let offset = error.offset { parts.append("byte \(offset)") }
        if let tensor = error.tensor { parts.append("tensor '\(escapedForMessage(tensor))'") }
        parts.append(error.reason)
        throw ModelFileError(path: path, reason: "not a usable \(what): " + parts.joined(separator: ": "))
    }
}

/// Parses and plans a spec for this machine (problems become one error with the diagnostics as the
/// compiler prints them): the model file's embedded text (`bytes` of it; errors name the model file,
/// `path`), or the file given with --spec (its own bytes, read as `mlpc check` reads them; errors name
/// that file, `specFile`).
func planSpec(
    bytes: [UInt8], specPath: String, dataDirectoryOverride: String?, threads: Int?, kernels: KernelSet, path: String,
    specFile: String? = nil, options: PlanOptions = PlanOptions()
) throws -> (Spec, Plan) {
    let loaded = SpecLoader.parse(bytes: bytes, path: specPath, dataDirectoryOverride: dataDirectoryOverride)
    var sources: [String: SourceFile] = [:]
    if let source = loaded.source { sources[source.path] = source }
    let errorPath = specFile ?? path
    let subject = specFile == nil ? "its spec" : "the spec"
    if let fileError = loaded.fileError { throw ModelFileError(path: errorPath, reason: fileError) }
    guard let spec = loaded.spec, !loaded.diagnostics.hasErrors else {
        throw ModelFileError(
            path: errorPath,
            reason: "\(subject) does not load:\n" + DiagnosticRenderer.text(loaded.diagnostics, sources: sources, color: false))
    }
    let (plan, diagnostics) = planForHost(spec, threads: threads, isa: kernels.isa, options: options)
    guard let plan, !diagnostics.hasErrors else {
        throw ModelFileError(
            path: errorPath, reason: "\(subject) does not plan:\n" + DiagnosticRenderer.text(diagnostics, sources: sources, color: false))
    }
    return (spec, plan)
}

/// A trained model ready to run: its spec, its plan (for this machine) and an executor holding its
/// parameters. Built from model.safetensors, or from any state_dict file together with a spec.
public final class LoadedModel {
    public let spec: Spec
    public let plan: Plan
    public let executor: StepExecutor
    /// The file the parameters came from.
    public let path: String
    /// Where the training data was when the model was trained (from the file's metadata), if recorded.
    public let trainedDataDirectory: String?
    /// How a table model encodes raw rows (from the file's metadata); nil for other models.
    public let tablePreprocessing: TablePreprocessing?
    let pool: WorkerPool

    /// Opens `path` (a model.safetensors, or a run directory holding one). Without `specPath` the spec
    /// is the one stored in the file; with it, that spec file is used and the tensors are checked
    /// against it. `dataDirectoryOverride` replaces the spec's data.dir (else the directory recorded
    /// when training is used).
    ///
    /// A path that cannot be read throws `FileAccessError`; a file that is not a usable model
    /// (damaged, another kind of mlpc file, outputs that are not finite) throws `ModelFileError`.
    public init(path requested: String, specPath: String? = nil, dataDirectoryOverride: String? = nil, threads: Int? = nil, kernels: KernelSet) throws {
        var path = requested
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            path = (path.hasSuffix("/") ? path : path + "/") + "model.safetensors"
        }
        let file = try readSafetensors(path: path, what: "model file")
        try checkModelFormat(file.metadata[ArtifactMetadataKey.format], path: path)
        let recordedData = file.metadata[ArtifactMetadataKey.dataDirectory]
        let dataDirectory = dataDirectoryOverride ?? recordedData
        let specBytes: [UInt8], specName: String
        // Where a relative data.dir of the embedded spec is resolved from: the spec's original folder.
        var embeddedSpecOrigin: String?
        if let specPath {
            // The file's own bytes, parsed as `mlpc check` parses them (not UTF-8 is an error, not a
            // lossy decoding). A spec path that cannot be read is an unusable argument, like a model path.
            switch SpecLoader.readSpecFile(path: specPath) {
            case .success(let bytes): specBytes = bytes
            case .failure(let error): throw FileAccessError(path: specPath, reason: error.message)
            }
            specName = specPath
        } else {
            guard let text = file.metadata[ArtifactMetadataKey.spec] else {
                throw ModelFileError(
                    path: path,
                    reason: "holds no spec in its metadata (a weights file?); give the spec with --spec SPEC, or use the run's model.safetensors")
            }
            let digest = SHA256.hash(Array(text.utf8)).hex
            if let recorded = file.metadata[ArtifactMetadataKey.specSHA256], recorded != digest {
                throw ModelFileError(
                    path: path,
                    reason: "the spec in its metadata has SHA-256 \(digest) but the file records \(escapedForMessage(recorded)): the file was altered")
            }
            specBytes = Array(text.utf8)
            // Diagnostics point at lines of the embedded text, so they name the model file holding it,
            // never the original spec file (which may have changed since, or never said that).
            embeddedSpecOrigin = file.metadata[ArtifactMetadataKey.specPath]
            specName = embeddedSpecName(modelPath: path, originalSpecPath: embeddedSpecOrigin)
        }
        var (spec, plan) = try planSpec(
            bytes: specBytes, specPath: specName, dataDirectoryOverride: dataDirectory, threads: threads, kernels: kernels, path: path,
            specFile: specPath, options: ArtifactMetadataKey.planOptions(file.metadata, path: path))
        if dataDirectory == nil, let embeddedSpecOrigin {
            spec.data.resolvedDirectory = resolveDataDirectory(spec.data.directory.value, relativeTo: embeddedSpecOrigin)
            plan.data.directory = spec.data.resolvedDirectory
        }
        // The tensors are checked against the plan's parameters (names, shapes, finite) before the
        // arena is made: a spec that asks for more than its tensors hold is refused without allocating.
        try checkStateDict(file, path: path, plan: plan)
        pool = WorkerPool(threads: plan.target.threads)
        executor = try StepExecutor(plan: plan, kernels: kernels, pool: pool, dropoutSeed: 0)
        fillBlock(file, plan: plan, prefix: "", into: executor.parameters, modelState: executor.modelState)
        self.spec = spec
        self.plan = plan
        self.path = path
        self.trainedDataDirectory = recordedData
        if let json = file.metadata[ArtifactMetadataKey.tablePreprocessing] {
            do {
                let decoded = try JSONDecoder().decode(TablePreprocessing.self, from: Data(json.utf8))
                guard decoded.inputWidth == plan.inputFeatures, decoded.outputWidth == plan.classes else {
                    throw ModelFileError(path: path, reason: "its table preprocessing encodes \(decoded.inputWidth) inputs and \(decoded.outputWidth) outputs, but its model has \(plan.inputFeatures) and \(plan.classes)")
                }
                tablePreprocessing = decoded
            } catch let error as ModelFileError {
                throw error
            } catch {
                throw ModelFileError(path: path, reason: "its table preprocessing (metadata '\(ArtifactMetadataKey.tablePreprocessing)') is not valid: \(error)")
            }
        } else {
            tablePreprocessing = nil
        }
    }

    /// Accuracy, per-class counts and the confusion matrix over every image of `data`. Throws
    /// `ModelFileError` when the model's outputs for an image are not finite (a parameter so large
    /// that float32 arithmetic overflows): the predictions would then be arbitrary.
    public func evaluate(_ data: any Dataset) throws -> Trainer.Evaluation {
        try checkDataset(data, fits: plan)
        let classes = plan.classes
        var total = Trainer.Evaluation(
            correct: 0, total: 0, confusion: [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes), predictions: [])
        total.predictions.reserveCapacity(data.count)
        // One evaluation batch at a time, so the logits of each batch can be checked before the next
        // one overwrites them.
        var start = 0
        while start < data.count {
            let rows = min(plan.evalBatchSize, data.count - start)
            let part = evaluateClassifier(executor, data, indices: (Int32(start)..<Int32(start + rows)).map { $0 })
            try requireFiniteOutputs(rows: rows) { "test image \(start + $0) of \(data.origin)" }
            total.correct += part.correct
            total.total += part.total
            for t in 0..<classes {
                for p in 0..<classes { total.confusion[t][p] += part.confusion[t][p] }
            }
            total.predictions += part.predictions
            start += rows
        }
        return total
    }

    /// Throws when a row of the last evaluation's logits holds NaN or an infinity, naming the model
    /// file, the input (`name(row)`) and the first outputs that are not finite.
    func requireFiniteOutputs(rows: Int, name: (Int) -> String) throws {
        let classes = plan.classes
        let logits = executor.evalLogits
        for row in 0..<rows {
            let outputs = UnsafeBufferPointer(start: logits + row * classes, count: classes)
            guard outputs.allSatisfy(\.isFinite) else {
                let bad = outputs.indices.filter { !outputs[$0].isFinite }
                let listed = bad.prefix(3).map { "class \($0): \(outputs[$0])" }.joined(separator: ", ") + (bad.count > 3 ? ", ..." : "")
                throw ModelFileError(
                    path: path,
                    reason: "its outputs for \(name(row)) are not finite (\(listed)): a parameter is too large for float32 arithmetic, so the model gives no answer")
            }
        }
    }

    /// The width and height of the picture the model takes (see `imageDimensions(of:)`), or nil when
    /// its input is not one gray image: a flat input ([n]) whose size is not a square, or channels.
    public var inputImageSize: (width: Int, height: Int)? {
        let size = imageDimensions(of: plan.inputShape)
        guard size.width * size.height == plan.inputFeatures else { return nil }
        if plan.inputShape.count == 1, plan.inputFeatures > 1, size.height == 1 { return nil }
        return size
    }

    /// True when the model was trained with cross-entropy, so the softmax of its outputs are class
    /// probabilities; for another loss (mse) its outputs are scores of its own kind.
    public var outputsAreLogits: Bool { plan.loss == .crossEntropy }

    /// Class scores of one image of raw uint8 pixels (as in the dataset: 0 black ... 255 white), run
    /// through the plan's evaluation kernels with one row. `input` names the image in the error
    /// thrown when the model's outputs for it are not finite.
    public func classify(pixels: [UInt8], input: String = "the input") throws -> ClassScores {
        guard pixels.count == plan.inputFeatures else {
            throw RuntimeError.data("an input of \(pixels.count) pixels does not fit the model's \(plan.inputFeatures) input features")
        }
        let classes = plan.classes
        var scores = [Float](repeating: 0, count: classes)
        var probabilities = [Float](repeating: 0, count: classes)
        var predicted = 0
        let label: [Int32] = [0]
        let index: [Int32] = [0]
        pixels.withUnsafeBufferPointer { image in
            label.withUnsafeBufferPointer { label in
                index.withUnsafeBufferPointer { index in
                    let samples = BatchSamples(
                        values: UnsafeRawPointer(image.baseAddress!), element: .uint8, labels: label.baseAddress!,
                        features: plan.inputFeatures)
                    let batch = StepExecutor.BatchSource(samples: samples, indices: index.baseAddress!, rows: 1)
                    predicted = Int(executor.evaluate(batch)[0])
                    let logits = executor.evalLogits
                    for c in 0..<classes { scores[c] = logits[c] }
                    probabilities.withUnsafeMutableBufferPointer { out in
                        executor.kernels.softmaxRows(logits, 1, classes, out.baseAddress!)
                    }
                }
            }
        }
        try requireFiniteOutputs(rows: 1) { _ in input }
        // Finite outputs give a finite softmax; checked anyway, since callers draw bars from it.
        guard probabilities.allSatisfy(\.isFinite) else {
            throw ModelFileError(path: path, reason: "the class probabilities for \(input) are not finite: the model gives no answer")
        }
        return ClassScores(predicted: predicted, scores: scores, probabilities: probabilities)
    }
}

/// Refuses a file whose metadata names another format than a model's: a training checkpoint (which
/// also holds optimizer state) or anything else. A file with no format at all (weights.safetensors, a
/// state_dict saved by PyTorch) is accepted: the spec then comes from --spec.
func checkModelFormat(_ format: String?, path: String) throws {
    guard let format, format != ArtifactMetadataKey.modelFormat else { return }
    if format == ArtifactMetadataKey.checkpointFormat {
        throw ModelFileError(
            path: path,
            reason: "is a training checkpoint (metadata format \"mlpc.checkpoint\"), not a model file; use the run's model.safetensors, or give the run directory")
    }
    throw ModelFileError(
        path: path,
        reason: "its metadata says format \"\(escapedForMessage(format))\", not \"\(ArtifactMetadataKey.modelFormat)\": it is not an mlpc model file")
}

/// The name diagnostics give the spec embedded in the model file at `modelPath`: the model file,
/// saying where the spec was first read from, so a line number is never taken for a line of that file.
func embeddedSpecName(modelPath: String, originalSpecPath: String?) -> String {
    guard let originalSpecPath else { return "\(modelPath) (its embedded spec)" }
    return "\(modelPath) (its embedded spec, from \(escapedForMessage(originalSpecPath)))"
}

/// `directory` resolved against the folder of `specPath` as the spec loader resolves data.dir: an
/// absolute directory as it is, a relative one joined to the spec's folder.
func resolveDataDirectory(_ directory: String, relativeTo specPath: String) -> String {
    if directory.hasPrefix("/") { return directory }
    guard let slash = specPath.lastIndex(of: "/") else { return directory }
    let folder = specPath[..<slash]
    if folder.isEmpty { return "/" + directory }
    return folder + "/" + directory
}

/// What the model says about one image: the predicted class, the raw outputs, and their softmax.
public struct ClassScores: Equatable, Sendable {
    public var predicted: Int
    /// The final layer's outputs (logits for cross-entropy).
    public var scores: [Float]
    public var probabilities: [Float]
}

