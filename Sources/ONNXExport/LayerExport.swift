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
    case .conv2d(let conv): try exportConv2d(layer, conv, into: &graph)
    case .pool2d(let pool): exportPool2d(layer, pool, into: &graph)
    case .adaptiveAveragePool2d(let size): try exportAdaptiveAveragePool2d(layer, size.value, into: &graph)
    case .batchNorm(let norm): try exportBatchNorm(layer, norm, into: &graph)
    }
}

/// `conv2d`: Conv with the PyTorch-layout weight [out, in / groups, kh, kw]; pads [top, left, bottom,
/// right]: `same` puts the odd row or column at the bottom or right, as PyTorch does.
func exportConv2d(_ layer: LayerSpec, _ conv: Conv2dSpec, into graph: inout ONNXGraphBuilder) throws {
    let name = layer.name.value
    guard let weight = try graph.parameter(layer: name, role: .weight) else {
        throw ONNXExportError(reason: "the plan has no weight for conv2d layer '\(name)'")
    }
    let bias = try graph.parameter(layer: name, role: .bias)
    let k = conv.kernel.value, s = conv.stride.value, d = conv.dilation.value
    let pads: [Int]
    switch conv.padding.value {
    case .explicit(let p): pads = [p.height, p.width, p.height, p.width]
    case .same:
        let totalHeight = d.height * (k.height - 1), totalWidth = d.width * (k.width - 1)
        pads = [totalHeight / 2, totalWidth / 2, totalHeight - totalHeight / 2, totalWidth - totalWidth / 2]
    }
    let activation = conv.activation?.value
    graph.node(
        "Conv", [graph.current, weight] + (bias.map { [$0] } ?? []), output: activation == nil ? "\(name).out" : "\(name).conv",
        attributes: [
            intsAttribute("kernel_shape", [k.height, k.width]), intsAttribute("strides", [s.height, s.width]),
            intsAttribute("pads", pads), intsAttribute("dilations", [d.height, d.width]), intAttribute("group", conv.groups.value),
        ],
        shape: graph.layerOutputShape)
    if let activation { exportActivation(activation, output: "\(name).out", into: &graph) }
    graph.declareCurrent()
}

/// `max_pool2d` / `avg_pool2d`. ceil_mode is spelled as extra padding at the bottom and right (with
/// ceil_mode 0), sized so that the output has the planner's (PyTorch's) size, whatever rule an ONNX
/// runtime applies to ceil_mode. Max pooling pads with -inf, as PyTorch does. Average pooling divides
/// by the window inside the padded input (PyTorch's count_include_pad), never by the extra padding:
/// the spec's padding is a Pad node of zeros, and the pool counts only what it is given
/// (count_include_pad 0). With `count_include_pad: false` the pool itself pads and counts only the
/// input. A dilated max pool gets `dilations`.
func exportPool2d(_ layer: LayerSpec, _ pool: Pool2dSpec, into graph: inout ONNXGraphBuilder) {
    let name = layer.name.value
    let input = graph.shape, output = graph.layerOutputShape
    let k = pool.kernel.value, s = pool.stride.value, p = pool.padding.value, d = pool.dilation.value
    // The padding after the input that the last window (spanning `span`) reaches (0 when it stops inside).
    func end(_ inSize: Int, _ outSize: Int, _ span: Int, _ stride: Int, _ before: Int) -> Int {
        max(0, (outSize - 1) * stride + span - inSize - before)
    }
    let attributes = [intsAttribute("kernel_shape", [k.height, k.width]), intsAttribute("strides", [s.height, s.width])]
    switch pool.kind {
    case .max:
        let spanHeight = d.height * (k.height - 1) + 1, spanWidth = d.width * (k.width - 1) + 1
        let pads = [p.height, p.width, end(input[1], output[1], spanHeight, s.height, p.height), end(input[2], output[2], spanWidth, s.width, p.width)]
        let dilations = d == .square(1) ? [] : [intsAttribute("dilations", [d.height, d.width])]
        graph.node(
            "MaxPool", [graph.current], output: "\(name).out", attributes: attributes + [intsAttribute("pads", pads)] + dilations, shape: output)
    case .average where !pool.countIncludePad.value:
        let pads = [p.height, p.width, end(input[1], output[1], k.height, s.height, p.height), end(input[2], output[2], k.width, s.width, p.width)]
        graph.node(
            "AveragePool", [graph.current], output: "\(name).out",
            attributes: attributes + [intsAttribute("pads", pads), intAttribute("count_include_pad", 0)], shape: output)
    case .average:
        var x = graph.current
        if p.height > 0 || p.width > 0 {
            let pads = graph.int64Tensor(name: "\(name).pads", values: [0, 0, p.height, p.width, 0, 0, p.height, p.width])
            x = graph.node("Pad", [x, pads], output: "\(name).padded", shape: [input[0], input[1] + 2 * p.height, input[2] + 2 * p.width])
        }
        let pads = [0, 0, end(input[1] + 2 * p.height, output[1], k.height, s.height, 0), end(input[2] + 2 * p.width, output[2], k.width, s.width, 0)]
        graph.node(
            "AveragePool", [x], output: "\(name).out",
            attributes: attributes + [intsAttribute("pads", pads), intAttribute("count_include_pad", 0)], shape: output)
    }
    graph.declareCurrent()
}

/// `adaptive_avg_pool2d`: GlobalAveragePool for output size 1; an AveragePool of equal windows where the
/// output size divides the input's; other sizes have windows of unequal size, which no ONNX pooling
/// node computes, and are refused.
func exportAdaptiveAveragePool2d(_ layer: LayerSpec, _ size: SpatialPair, into graph: inout ONNXGraphBuilder) throws {
    let name = layer.name.value
    let input = graph.shape
    if size == .square(1) {
        graph.node("GlobalAveragePool", [graph.current], output: "\(name).out", shape: graph.layerOutputShape)
    } else if input[1] % size.height == 0 && input[2] % size.width == 0 {
        let k = [input[1] / size.height, input[2] / size.width]
        graph.node(
            "AveragePool", [graph.current], output: "\(name).out",
            attributes: [intsAttribute("kernel_shape", k), intsAttribute("strides", k), intsAttribute("pads", [0, 0, 0, 0])],
            shape: graph.layerOutputShape)
    } else {
        throw ONNXExportError(
            reason: "adaptive_avg_pool2d layer '\(name)' (\(layer.location)): output size \(size.text) does not divide its input \(input[1])x\(input[2]), so its windows differ in size, which no ONNX pooling node computes; use an output size that divides the input, or an avg_pool2d")
    }
    graph.declareCurrent()
}

/// `batch_norm` at inference: BatchNormalization with the running statistics (PyTorch's eval mode),
/// on [N, C] after a linear or [N, C, H, W] after a convolution; without `affine`, scale 1 and shift 0.
func exportBatchNorm(_ layer: LayerSpec, _ norm: BatchNormSpec, into graph: inout ONNXGraphBuilder) throws {
    let name = layer.name.value
    let channels = graph.shape[0]
    let scale = try graph.parameter(layer: name, role: .weight) ?? graph.floatInitializer(name: "\(name).scale", values: [Float](repeating: 1, count: channels))
    let shift = try graph.parameter(layer: name, role: .bias) ?? graph.floatInitializer(name: "\(name).shift", values: [Float](repeating: 0, count: channels))
    let mean = try graph.state(layer: name, role: .runningMean), variance = try graph.state(layer: name, role: .runningVar)
    graph.node(
        "BatchNormalization", [graph.current, scale, shift, mean, variance], output: "\(name).out",
        attributes: [floatAttribute("epsilon", Float(norm.eps.value))])
    graph.declareCurrent()
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
