import Files
import Foundation
import ONNXProto
import Planner
import SpecParser

/// The ONNX versions an exported model declares. IR version 8 and opset 17 (ONNX 1.12, 2022) are read
/// by every ONNX Runtime since 1.13 and by the web and mobile builds (ONNX Runtime refuses an IR
/// version newer than it knows), and opset 17 has every operator the layer kinds need.
public enum ONNXVersions {
    public static let irVersion: Int64 = 8
    public static let opset: Int64 = 17
}

/// A model that cannot be exported; the command line names the model file with it.
public struct ONNXExportError: Error, CustomStringConvertible, Equatable {
    public var reason: String

    public init(reason: String) { self.reason = reason }

    public var description: String { reason }
}

/// The names of the graph's outputs.
public enum ONNXOutputName {
    /// The final layer's outputs, one row per sample.
    public static let logits = "logits"
    /// Their softmax over the classes.
    public static let probabilities = "probabilities"
    /// A table regressor's predicted targets, in their own units.
    public static let predictions = "predictions"
}

/// An exported model (swift-protobuf's message for ONNX's ModelProto).
public typealias ONNXModelProto = Onnx_ModelProto

/// The name of the symbolic batch dimension of the input and outputs.
public let onnxBatchDimension = "batch"

/// Protobuf messages are limited to 2 GiB; larger models would need ONNX's external data files.
let maxSerializedBytes = Int(Int32.max) - (1 << 20)

/// The ONNX model of a trained model: `spec` and its `plan` give the layers and the input
/// normalization, `tensors` the parameters by PyTorch name in PyTorch's layout. The graph reads the
/// raw sample values (`ONNXInput` says what they are) and writes `logits` and `probabilities`. A
/// model trained on a table (`table`, its preprocessing) reads the encoded feature vector and
/// standardizes it; a table regressor writes `predictions` in the target's units instead.
public func makeONNXModel(
    spec: Spec, plan: Plan, tensors: [String: TensorValues], mlpcVersion: String, table: ONNXTable? = nil
) throws -> Onnx_ModelProto {
    guard plan.layers.count == spec.model.layers.count else {
        throw ONNXExportError(reason: "the plan has \(plan.layers.count) layers, the spec \(spec.model.layers.count)")
    }
    let parameterBytes = plan.parameterCount * 4
    guard parameterBytes < maxSerializedBytes else {
        throw ONNXExportError(
            reason: "its \(plan.parameterCount) parameters (\(parameterBytes) bytes) exceed the 2 GiB an ONNX file holds without external data, which mlpc does not write")
    }
    let input = try ONNXInput(plan: plan, table: table)
    var graph = ONNXGraphBuilder(input: input.name, shape: plan.inputShape, plan: plan, tensors: tensors)
    if let table {
        // The preprocessing's standardization: (x - mean) / std on number columns; binary and
        // one-hot columns pass (x - 0) / 1, unchanged.
        let (means, stds) = table.standardization
        let mean = graph.floatInitializer(name: "\(input.name).mean", values: means)
        let std = graph.floatInitializer(name: "\(input.name).std", values: stds)
        let centered = graph.node("Sub", [input.name, mean], output: "\(input.name).centered")
        graph.node("Div", [centered, std], output: "\(input.name).standardized")
    }
    if table == nil || input.normalization.scale != 1 || input.normalization.shift != 0 {
        // The gather's normalization as two rounded operations, as the gather computes it: x * scale + shift.
        let scale = graph.scalar(input.normalization.scale), shift = graph.scalar(input.normalization.shift)
        let scaled = graph.node("Mul", [graph.current, scale], output: "\(input.name).scaled")
        graph.node("Add", [scaled, shift], output: "\(input.name).normalized")
    }
    for (layer, summary) in zip(spec.model.layers, plan.layers) {
        graph.layerOutputShape = summary.outputShape
        try exportLayer(layer, into: &graph)
        // The export must compute the shape the planner inferred (which the value_info declares).
        guard graph.shape == summary.outputShape else {
            throw ONNXExportError(
                reason: "layer '\(layer.name.value)' exports to a per-sample shape \(shapeText(graph.shape)), but the plan says \(shapeText(summary.outputShape))")
        }
    }
    let classes = plan.classes
    let outputs = outputDescriptions(plan: plan, table: table)
    if let table, !table.isClassifier {
        // The targets were trained standardized: predictions = outputs * std + mean, as mlpc predict.
        guard table.targetStds.count == classes, table.targetMeans.count == classes else {
            throw ONNXExportError(reason: "the table preprocessing has \(table.targetStds.count) target statistics for \(classes) outputs")
        }
        let std = graph.floatInitializer(name: "targets.std", values: table.targetStds.map { Float($0) })
        let mean = graph.floatInitializer(name: "targets.mean", values: table.targetMeans.map { Float($0) })
        graph.renameCurrent(to: "outputs")
        let scaled = graph.node("Mul", ["outputs", std], output: "outputs.scaled")
        graph.node("Add", [scaled, mean], output: ONNXOutputName.predictions)
    } else {
        graph.renameCurrent(to: ONNXOutputName.logits)
        graph.node("Softmax", [ONNXOutputName.logits], output: ONNXOutputName.probabilities, attributes: [intAttribute("axis", 1)])
    }

    var graphProto = Onnx_GraphProto()
    graphProto.name = spec.name.value
    graphProto.node = graph.nodes
    graphProto.initializer = graph.initializers
    graphProto.input = [valueInfo(input.name, shape: plan.inputShape, doc: input.meaning)]
    graphProto.output = outputs.map { valueInfo($0.name, shape: [classes], doc: $0.meaning) }
    graphProto.valueInfo = graph.valueShapes.map { valueInfo($0.name, shape: $0.shape, doc: "") }

    var model = Onnx_ModelProto()
    model.irVersion = ONNXVersions.irVersion
    var opset = Onnx_OperatorSetIdProto()
    opset.domain = ""
    opset.version = ONNXVersions.opset
    model.opsetImport = [opset]
    model.producerName = "mlpc"
    model.producerVersion = mlpcVersion
    model.graph = graphProto
    model.docString = modelDocString(spec: spec, plan: plan, input: input)
    model.metadataProps = modelMetadata(spec: spec, plan: plan, input: input, mlpcVersion: mlpcVersion).map { key, value in
        var entry = Onnx_StringStringEntryProto()
        entry.key = key
        entry.value = value
        return entry
    }
    return model
}

/// Writes `model` to `path` atomically: a reader sees the old file or the whole new one, and a failure
/// (an unwritable folder, a full disk) leaves nothing at `path` that was not there before.
public func writeONNXModel(_ model: Onnx_ModelProto, to path: String) throws {
    let bytes: [UInt8]
    do {
        bytes = try model.serializedBytes()
    } catch {
        throw ONNXExportError(reason: "the ONNX model cannot be encoded: \(error)")
    }
    try writeFileAtomically(bytes, to: path)
}

/// A float32 tensor value of shape [batch] + `shape`.
func valueInfo(_ name: String, shape: [Int], doc: String) -> Onnx_ValueInfoProto {
    var batch = Onnx_TensorShapeProto.Dimension()
    batch.dimParam = onnxBatchDimension
    var shapeProto = Onnx_TensorShapeProto()
    shapeProto.dim = [batch] + shape.map { size in
        var dimension = Onnx_TensorShapeProto.Dimension()
        dimension.dimValue = Int64(size)
        return dimension
    }
    var tensorType = Onnx_TypeProto.Tensor()
    tensorType.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
    tensorType.shape = shapeProto
    var info = Onnx_ValueInfoProto()
    info.name = name
    info.type.tensorType = tensorType
    if !doc.isEmpty { info.docString = doc }
    return info
}

/// "input 'pixels' float32 [batch, 1, 28, 28], outputs 'logits' [batch, 10] and 'probabilities' [batch, 10]".
public func describeONNXInterface(_ model: Onnx_ModelProto) -> String {
    func described(_ info: Onnx_ValueInfoProto) -> String {
        let dims = info.type.tensorType.shape.dim.map { $0.dimParam.isEmpty ? String($0.dimValue) : $0.dimParam }
        return "'\(info.name)' [\(dims.joined(separator: ", "))]"
    }
    let inputs = model.graph.input.map { "float32 " + described($0) }.joined(separator: ", ")
    let outputs = model.graph.output.map(described).joined(separator: " and ")
    return "input \(inputs), outputs \(outputs)"
}
