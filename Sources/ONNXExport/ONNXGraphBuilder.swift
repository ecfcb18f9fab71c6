import Foundation
import ONNXProto
import Planner
import SpecParser

/// An ONNX graph in the making: a straight line of nodes over named values, the initializers they
/// read, and the shape of the value flowing out of the layers so far. Each layer kind's export
/// function (`LayerExport.swift`) reads `current` and appends the nodes that compute the next value.
struct ONNXGraphBuilder {
    /// The value the next layer reads.
    private(set) var current: String
    /// Its shape per sample (the batch dimension left out).
    private(set) var shape: [Int]
    private(set) var nodes: [Onnx_NodeProto] = []
    private(set) var initializers: [Onnx_TensorProto] = []
    /// Intermediate values with their per-sample shapes, declared so that readers (and the checker's
    /// shape inference) see every layer's output shape.
    private(set) var valueShapes: [(name: String, shape: [Int])] = []
    /// The per-sample output shape the planner inferred for the layer being exported (its
    /// `LayerSummary`), for export functions whose operators change the shape (pools, convolutions).
    var layerOutputShape: [Int] = []
    private var scalarNames: [UInt32: String] = [:]
    private let plan: Plan
    private let tensors: [String: TensorValues]

    init(input: String, shape: [Int], plan: Plan, tensors: [String: TensorValues]) {
        current = input
        self.shape = shape
        self.plan = plan
        self.tensors = tensors
    }

    /// Appends one node reading `inputs` and writing the value `output`, which becomes the current
    /// value with per-sample shape `shape` (unchanged when nil). Returns `output`.
    @discardableResult
    mutating func node(
        _ operation: String, _ inputs: [String], output: String, attributes: [Onnx_AttributeProto] = [], shape newShape: [Int]? = nil
    ) -> String {
        var node = Onnx_NodeProto()
        node.opType = operation
        node.name = output
        node.input = inputs
        node.output = [output]
        node.attribute = attributes
        nodes.append(node)
        current = output
        if let newShape { shape = newShape }
        return output
    }

    /// Declares the current value as a layer's output, with its shape, for the graph's value_info.
    mutating func declareCurrent() {
        valueShapes.append((current, shape))
    }

    /// The name of a float32 scalar initializer holding `value` (one per distinct value, shared).
    mutating func scalar(_ value: Float) -> String {
        if let name = scalarNames[value.bitPattern] { return name }
        let name = "constant.\(value)"
        initializers.append(floatTensor(name: name, shape: [], values: [value]))
        scalarNames[value.bitPattern] = name
        return name
    }

    /// The initializer of the plan's parameter tensor of `layer` with `role` (PyTorch's name and
    /// shape, `fc1.weight` [out, in]), or nil when the layer has none (a linear without bias).
    mutating func parameter(layer: String, role: ParameterTensor.Role) throws -> String? {
        guard let tensor = plan.parameters.first(where: { $0.layer == layer && $0.role == role }) else { return nil }
        guard let values = tensors[tensor.name], values.shape == tensor.shape, values.values.count == tensor.count else {
            throw ONNXExportError(reason: "the parameter tensor \(tensor.name) \(shapeText(tensor.shape)) is missing or has another shape")
        }
        initializers.append(floatTensor(name: tensor.name, shape: tensor.shape, values: values.values))
        return tensor.name
    }

    /// The initializer of the plan's model-state tensor of `layer` with `role` (batch norm's running
    /// statistics, `bn1.running_mean` [C]).
    mutating func state(layer: String, role: StateTensor.Role) throws -> String {
        guard let tensor = plan.modelState.first(where: { $0.layer == layer && $0.role == role }),
            let values = tensors[tensor.name], values.shape == tensor.shape, values.values.count == tensor.count
        else { throw ONNXExportError(reason: "the model state of layer '\(layer)' (\(role.rawValue)) is missing") }
        initializers.append(floatTensor(name: tensor.name, shape: tensor.shape, values: values.values))
        return tensor.name
    }

    /// A float32 initializer [values.count] of the export's own (not a parameter of the model).
    mutating func floatInitializer(name: String, values: [Float]) -> String {
        initializers.append(floatTensor(name: name, shape: [values.count], values: values))
        return name
    }

    /// An int64 initializer [values.count] (operator inputs such as Pad's pads).
    mutating func int64Tensor(name: String, values: [Int]) -> String {
        var tensor = Onnx_TensorProto()
        tensor.name = name
        tensor.dims = [Int64(values.count)]
        tensor.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        tensor.int64Data = values.map(Int64.init)
        initializers.append(tensor)
        return name
    }

    /// Renames the current value to `name`: the output of the graph's last node (in a straight line
    /// nothing reads it yet), or, should the current value be no node's output, an Identity node's.
    mutating func renameCurrent(to name: String) {
        guard let last = nodes.indices.last, nodes[last].output == [current] else {
            node("Identity", [current], output: name)
            return
        }
        nodes[last].output = [name]
        nodes[last].name = name
        valueShapes.removeAll { $0.name == current }
        current = name
    }
}

/// A parameter tensor's values in PyTorch's row-major layout.
public struct TensorValues: Equatable, Sendable {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }
}

/// A float32 tensor stored as little-endian raw data, as ONNX Runtime reads initializers fastest.
func floatTensor(name: String, shape: [Int], values: [Float]) -> Onnx_TensorProto {
    var tensor = Onnx_TensorProto()
    tensor.name = name
    tensor.dims = shape.map(Int64.init)
    tensor.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
    var bytes = Data(capacity: values.count * 4)
    for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
    tensor.rawData = bytes
    return tensor
}

func floatAttribute(_ name: String, _ value: Float) -> Onnx_AttributeProto {
    var attribute = Onnx_AttributeProto()
    attribute.name = name
    attribute.type = .float
    attribute.f = value
    return attribute
}

func intAttribute(_ name: String, _ value: Int) -> Onnx_AttributeProto {
    var attribute = Onnx_AttributeProto()
    attribute.name = name
    attribute.type = .int
    attribute.i = Int64(value)
    return attribute
}

func intsAttribute(_ name: String, _ values: [Int]) -> Onnx_AttributeProto {
    var attribute = Onnx_AttributeProto()
    attribute.name = name
    attribute.type = .ints
    attribute.ints = values.map(Int64.init)
    return attribute
}
