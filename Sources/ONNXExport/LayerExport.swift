import ONNXProto
import Planner
import SpecParser

// The ONNX form of every layer kind at inference, one function per kind. Each reads the builder's
// current value and appends the nodes that compute the layer's output, named "<layer>.out".

/// The list of layer kinds. The switch is exhaustive, so a new case of `LayerKind` is a compile error
/// here until its export function is added.
func exportLayer(_ layer: LayerSpec, into graph: inout ONNXGraphBuilder) throws {
    switch layer.kind {
    case .flatten: exportFlatten(layer, into: &graph)
    case .linear(let linear): try exportLinear(layer, linear, into: &graph)
    case .activation(let activation): exportActivation(activation.value, output: "\(layer.name.value).out", into: &graph)
    case .dropout: exportDropout(layer, into: &graph)
    }
}

/// `flatten`: Flatten with axis 1, [N, d1, d2, ...] to [N, d1 * d2 * ...], as torch.flatten(x, 1).
func exportFlatten(_ layer: LayerSpec, into graph: inout ONNXGraphBuilder) {
    graph.node(
        "Flatten", [graph.current], output: "\(layer.name.value).out", attributes: [intAttribute("axis", 1)],
        shape: [graph.shape.reduce(1, *)])
    graph.declareCurrent()
}

/// `linear`: Gemm(x, weight, bias) with transB = 1, which is PyTorch's x wᵀ + b with the weight as
/// PyTorch stores it ([out, in]); no bias input when the layer has none. Its activation follows.
func exportLinear(_ layer: LayerSpec, _ linear: LinearSpec, into graph: inout ONNXGraphBuilder) throws {
    let name = layer.name.value
    guard let weight = try graph.parameter(layer: name, role: .weight) else {
        throw ONNXExportError(reason: "the plan has no weight for linear layer '\(name)'")
    }
    let bias = try graph.parameter(layer: name, role: .bias)
    let activation = linear.activation?.value
    graph.node(
        "Gemm", [graph.current, weight] + (bias.map { [$0] } ?? []), output: activation == nil ? "\(name).out" : "\(name).linear",
        attributes: [intAttribute("transB", 1)], shape: [linear.outFeatures.value])
    if let activation { exportActivation(activation, output: "\(name).out", into: &graph) }
    graph.declareCurrent()
}

/// `dropout`: the identity at inference (PyTorch's eval mode), so no node at all.
func exportDropout(_ layer: LayerSpec, into graph: inout ONNXGraphBuilder) {}

/// An activation, on its own or after a linear, writing `output`. GELU is spelled out in
/// elementary operators (the Gelu operator needs opset 20), in the order mlpc's kernels compute it:
/// (0.5 x)(1 + erf(x / √2)), or (0.5 x)(1 + tanh(√(2/π)(x + 0.044715 x³))) for the tanh approximation.
func exportActivation(_ activation: Activation, output: String, into graph: inout ONNXGraphBuilder) {
    let x = graph.current
    switch activation {
    case .relu: graph.node("Relu", [x], output: output)
    case .leakyRelu(let slope): graph.node("LeakyRelu", [x], output: output, attributes: [floatAttribute("alpha", Float(slope))])
    case .sigmoid: graph.node("Sigmoid", [x], output: output)
    case .tanh: graph.node("Tanh", [x], output: output)
    case .gelu(let tanhApproximation):
        let inner: String
        if tanhApproximation {
            let cubicFactor = graph.scalar(0.044715), sqrtTwoOverPi = graph.scalar(0.79788456080286535588)
            let cx = graph.node("Mul", [cubicFactor, x], output: "\(output).cx")
            let cx2 = graph.node("Mul", [cx, x], output: "\(output).cx2")
            let cx3 = graph.node("Mul", [cx2, x], output: "\(output).cx3")
            let sum = graph.node("Add", [x, cx3], output: "\(output).sum")
            let scaled = graph.node("Mul", [sqrtTwoOverPi, sum], output: "\(output).scaled")
            inner = graph.node("Tanh", [scaled], output: "\(output).tanh")
        } else {
            let sqrtHalf = graph.scalar(0.70710678118654752440)
            let scaled = graph.node("Mul", [x, sqrtHalf], output: "\(output).scaled")
            inner = graph.node("Erf", [scaled], output: "\(output).erf")
        }
        let one = graph.scalar(1), half = graph.scalar(0.5)
        let onePlus = graph.node("Add", [one, inner], output: "\(output).one_plus")
        let halfX = graph.node("Mul", [half, x], output: "\(output).half_x")
        graph.node("Mul", [halfX, onePlus], output: output)
    }
}
