import ArgumentParser
import Files
import Foundation
import DataSources
import ONNXExport
import Runtime

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a trained model as an ONNX model, for ONNX Runtime and other ONNX tools.",
        discussion: """
            The ONNX model (IR version \(ONNXVersions.irVersion), opset \(ONNXVersions.opset)) takes the raw sample values \
            as float32 with a symbolic batch dimension (a picture's pixels, 0...255: the numbers mlpc predict gives the \
            model) and normalizes them itself; its outputs are 'logits' and their softmax 'probabilities'. Dropout is left \
            out (the identity at inference), batch norm uses its running statistics. A model trained on a CSV table takes \
            'features', the encoded row (numbers raw, binaries 0/1, categories one-hot with a last column for unseen values), \
            and standardizes it itself; a table regressor's one output is 'predictions', in the target's units. The model's doc string and metadata name the input, its shape and meaning, and \
            hold the resolved spec with its SHA-256.
            The file is written atomically: on any failure nothing is left at the output path, and an existing file there \
            is kept.
            Exit status: 0 written; 1 the model is unusable; 2 unusable arguments, a path that cannot be read, or an output \
            that cannot be written.
            """
    )

    @Argument(help: "The model: a model.safetensors (or a run directory holding one).")
    var model: String

    @Option(name: .shortAndLong, help: "The ONNX file to write (default: model.onnx beside the model file; a directory: model.onnx in it).")
    var output: String?

    @Option(help: "Use this spec instead of the one stored in the model (needed for a weights.safetensors).")
    var spec: String?

    func validate() throws {
        for (flag, path) in [("the model path", model), ("--output", output), ("--spec", spec)] where path?.isEmpty == true {
            throw ValidationError("\(flag) is empty")
        }
    }

    func run() throws {
        let kernels = try selectedKernels()
        let loaded: LoadedModel
        do {
            // One thread: exporting runs no kernel, so no worker threads are started for it.
            loaded = try LoadedModel(path: model, specPath: spec, threads: 1, kernels: kernels)
        } catch {
            throw commandFailure(for: error)
        }
        if loaded.spec.data.table != nil && loaded.tablePreprocessing == nil {
            // Without the preprocessing the graph could not say what its input columns are.
            throw CommandFailure.invalid(
                "mlpc: error: \(pathForMessage(loaded.path)): the model was trained on a table, but the file has no table preprocessing (its columns, statistics and categories); export the run's model.safetensors, which has it")
        }
        let destination = outputPath(modelFile: loaded.path)
        if isSameFile(destination, loaded.path) {
            throw CommandFailure.usage("--output \(destination) is the model file itself; choose another path")
        }
        var tensors: [String: TensorValues] = [:]
        for tensor in stateDictTensors(plan: loaded.plan, block: loaded.executor.parameters, modelState: loaded.executor.modelState.map { UnsafePointer($0) }) {
            tensors[tensor.name] = TensorValues(shape: tensor.shape, values: tensor.values)
        }
        let onnx: ONNXModelProto
        do {
            onnx = try makeONNXModel(
                spec: loaded.spec, plan: loaded.plan, tensors: tensors, mlpcVersion: MLPC.version, table: loaded.tablePreprocessing.map(onnxTable))
        } catch {
            throw CommandFailure.invalid("mlpc: error: \(pathForMessage(loaded.path)): cannot be exported to ONNX: \(error)")
        }
        do {
            try writeONNXModel(onnx, to: destination)
        } catch let error as ONNXExportError {
            throw CommandFailure.invalid("mlpc: error: \(pathForMessage(loaded.path)): \(error)")
        } catch {
            throw CommandFailure.usage("\(error)")
        }
        print("wrote \(destination) (ONNX IR \(ONNXVersions.irVersion), opset \(ONNXVersions.opset)): \(describeONNXInterface(onnx))")
    }

    /// --output, model.onnx inside it when it is a directory, else model.onnx beside the model file.
    func outputPath(modelFile: String) -> String {
        guard let output else {
            guard let slash = modelFile.lastIndex(of: "/") else { return "model.onnx" }
            return modelFile[...slash] + "model.onnx"
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory), isDirectory.boolValue {
            return (output.hasSuffix("/") ? output : output + "/") + "model.onnx"
        }
        return output
    }

    /// True when both paths name one existing file (the same device and inode).
    func isSameFile(_ a: String, _ b: String) -> Bool {
        var first = stat(), second = stat()
        guard stat(a, &first) == 0, stat(b, &second) == 0 else { return false }
        return first.st_dev == second.st_dev && first.st_ino == second.st_ino
    }

    /// The table preprocessing of model.safetensors' metadata in the export's terms.
    func onnxTable(_ p: TablePreprocessing) -> ONNXTable {
        ONNXTable(
            columns: p.features.map {
                ONNXTable.Column(
                    name: $0.name, type: $0.type, mean: $0.mean, std: $0.std, vocabulary: $0.vocabulary, missing: $0.missing, fill: $0.fill,
                    offset: $0.offset, width: $0.width)
            },
            width: p.inputWidth, targetColumns: p.targetColumns, classNames: p.isClassifier ? p.classNames : [], targetMeans: p.targetMeans,
            targetStds: p.targetStds)
    }
}
