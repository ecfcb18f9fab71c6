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
    public static let spec = "spec"
    public static let specSHA256 = "spec_sha256"
    /// Where the spec was read from when training, so messages point at a file the user knows.
    public static let specPath = "spec_path"
    public static let dataDirectory = "data_directory"
    public static let mlpcVersion = "mlpc_version"
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

    public var description: String { "\(path): \(reason)" }
}

/// Writes weights.safetensors: the parameters as PyTorch's state_dict, nothing else.
public func writeWeightsFile(plan: Plan, parameters: UnsafePointer<Float>, to path: String) throws {
    try SafetensorsFile(tensors: stateDictTensors(plan: plan, block: parameters)).write(to: path)
}

/// Writes model.safetensors: the state_dict and the spec that gives it meaning.
public func writeModelFile(
    spec: Spec, plan: Plan, parameters: UnsafePointer<Float>, dataDirectory: String, mlpcVersion: String, to path: String
) throws {
    let metadata = [
        ArtifactMetadataKey.format: "mlpc.model",
        ArtifactMetadataKey.spec: spec.resolvedYAML,
        ArtifactMetadataKey.specSHA256: SHA256.hash(Array(spec.resolvedYAML.utf8)).hex,
        ArtifactMetadataKey.specPath: spec.path,
        ArtifactMetadataKey.dataDirectory: dataDirectory,
        ArtifactMetadataKey.mlpcVersion: mlpcVersion,
    ]
    try SafetensorsFile(tensors: stateDictTensors(plan: plan, block: parameters), metadata: metadata).write(to: path)
}

/// Reads a safetensors file, turning every failure (missing, a directory, damaged) into a message that
/// names the file.
func readSafetensors(path: String, what: String) throws -> SafetensorsFile {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw ModelFileError(path: path, reason: "no such file")
    }
    guard !isDirectory.boolValue else { throw ModelFileError(path: path, reason: "is a directory, not \(what)") }
    do {
        return try SafetensorsFile.read(path: path)
    } catch let error as SafetensorsError {
        var parts: [String] = []
        if let offset = error.offset { parts.append("byte \(offset)") }
        if let tensor = error.tensor { parts.append("tensor '\(tensor)'") }
        parts.append(error.reason)
        throw ModelFileError(path: path, reason: "not a usable \(what): " + parts.joined(separator: ": "))
    }
}

/// Parses and plans spec text for this machine; problems become one error naming `path` with the
/// diagnostics as the compiler prints them.
func planSpec(
    text: String, specPath: String, dataDirectoryOverride: String?, threads: Int?, kernels: KernelSet, path: String
) throws -> (Spec, Plan) {
    let loaded = SpecLoader.parse(bytes: Array(text.utf8), path: specPath, dataDirectoryOverride: dataDirectoryOverride)
    var sources: [String: SourceFile] = [:]
    if let source = loaded.source { sources[source.path] = source }
    if let fileError = loaded.fileError { throw ModelFileError(path: path, reason: fileError) }
    guard let spec = loaded.spec else {
        throw ModelFileError(
            path: path, reason: "its spec does not load:\n" + DiagnosticRenderer.text(loaded.diagnostics, sources: sources, color: false))
    }
    let target = hostTarget(threads: threads ?? spec.training.threads?.value, isa: kernels.isa)
    let (plan, diagnostics) = makePlan(spec, target: target)
    guard let plan, !diagnostics.hasErrors else {
        throw ModelFileError(
            path: path, reason: "its spec does not plan:\n" + DiagnosticRenderer.text(diagnostics, sources: sources, color: false))
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
    let pool: WorkerPool

    /// Opens `path` (a model.safetensors, or a run directory holding one). Without `specPath` the spec
    /// is the one stored in the file; with it, that spec file is used and the tensors are checked
    /// against it. `dataDirectoryOverride` replaces the spec's data.dir (else the directory recorded
    /// when training is used).
    public init(path requested: String, specPath: String? = nil, dataDirectoryOverride: String? = nil, threads: Int? = nil, kernels: KernelSet) throws {
        var path = requested
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            path = (path.hasSuffix("/") ? path : path + "/") + "model.safetensors"
        }
        let file = try readSafetensors(path: path, what: "model file")
        let recordedData = file.metadata[ArtifactMetadataKey.dataDirectory]
        let dataDirectory = dataDirectoryOverride ?? recordedData
        let specText: String, specName: String
        if let specPath {
            let loaded = SpecLoader.load(path: specPath)
            if let fileError = loaded.fileError { throw ModelFileError(path: specPath, reason: fileError) }
            guard let text = loaded.source?.text else { throw ModelFileError(path: specPath, reason: "cannot read the spec") }
            specText = text
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
                    path: path, reason: "the spec in its metadata has SHA-256 \(digest) but the file records \(recorded): the file was altered")
            }
            specText = text
            specName = file.metadata[ArtifactMetadataKey.specPath] ?? "spec.yaml"
        }
        let (spec, plan) = try planSpec(
            text: specText, specPath: specName, dataDirectoryOverride: dataDirectory, threads: threads, kernels: kernels, path: path)
        pool = WorkerPool(threads: plan.target.threads)
        executor = try StepExecutor(plan: plan, kernels: kernels, pool: pool, dropoutSeed: 0)
        try loadStateDict(file, path: path, plan: plan, into: executor.parameters)
        self.spec = spec
        self.plan = plan
        self.path = path
        self.trainedDataDirectory = recordedData
    }

    /// Accuracy, per-class counts and the confusion matrix over every image of `data`.
    public func evaluate(_ data: LabeledImages) -> Trainer.Evaluation {
        evaluateClassifier(executor, data, indices: (0..<Int32(data.count)).map { $0 })
    }

    /// The width and height of one input image (the last two dimensions of the input shape; a flat
    /// input of n features is 1 x n).
    public var inputImageSize: (width: Int, height: Int) { imageDimensions(of: plan.inputShape) }

    /// Class scores of one image of raw uint8 pixels (as in the dataset: 0 black ... 255 white), run
    /// through the plan's evaluation kernels with one row.
    public func classify(pixels: [UInt8]) throws -> ClassScores {
        guard pixels.count == plan.inputFeatures else {
            throw RuntimeError.data("an input of \(pixels.count) pixels does not fit the model's \(plan.inputFeatures) input features")
        }
        let classes = plan.classes
        var scores = [Float](repeating: 0, count: classes)
        var probabilities = [Float](repeating: 0, count: classes)
        var predicted = 0
        let label: [UInt8] = [0]
        let index: [Int32] = [0]
        pixels.withUnsafeBufferPointer { image in
            label.withUnsafeBufferPointer { label in
                index.withUnsafeBufferPointer { index in
                    let batch = StepExecutor.BatchSource(
                        images: image.baseAddress!, labels: label.baseAddress!, features: plan.inputFeatures,
                        indices: index.baseAddress!, rows: 1)
                    predicted = Int(executor.evaluate(batch)[0])
                    let logits = executor.evalLogits
                    for c in 0..<classes { scores[c] = logits[c] }
                    probabilities.withUnsafeMutableBufferPointer { out in
                        executor.kernels.softmaxRows(logits, 1, classes, out.baseAddress!)
                    }
                }
            }
        }
        return ClassScores(predicted: predicted, scores: scores, probabilities: probabilities)
    }
}

/// What the model says about one image: the predicted class, the raw outputs, and their softmax.
public struct ClassScores: Equatable, Sendable {
    public var predicted: Int
    /// The final layer's outputs (logits for cross-entropy).
    public var scores: [Float]
    public var probabilities: [Float]
}

/// Width and height of an image of `shape` (the last two dimensions; a flat shape is one row).
func imageDimensions(of shape: [Int]) -> (width: Int, height: Int) {
    let dims = shape.drop { $0 == 1 }
    if dims.count >= 2 { return (dims[dims.endIndex - 1], dims[dims.endIndex - 2]) }
    return (dims.last ?? shape.reduce(1, *), 1)
}
