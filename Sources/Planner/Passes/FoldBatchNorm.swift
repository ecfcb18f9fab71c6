import KernelInterface

/// The fold-batch-norm pass. In evaluation a batch norm is an affine map per channel, (x - running_mean)
/// x gamma / sqrt(running_var + eps) + beta, so right after a convolution or linear layer it can be
/// folded into that layer: the layer's weight scaled per output channel and a new bias. A
/// `BatchNormFold` kernel computes them into two small evaluation buffers before the layer runs, from
/// the parameters and running statistics as they are then; the layer writes the batch norm's output,
/// and an activation right after the batch norm moves into the layer's epilogue. One pass over the
/// activations instead of three (layer, batch norm, activation). Training is untouched; evaluation
/// changes by float rounding (the scale is applied to the weights instead of the sums).
func addBatchNormFold(_ plan: inout Plan) -> Result<String, PassSkipped> {
    let kernels = plan.evalKernels
    /// Evaluation kernels that use each buffer (reading or writing).
    var uses: [String: Int] = [:]
    for kernel in kernels {
        for buffer in Set((kernel.reads + kernel.writes).map(\.buffer)) { uses[buffer, default: 0] += 1 }
    }
    var rewritten: [Kernel] = []
    var orphaned: Set<String> = []
    var newBuffers: [Buffer] = []
    var folds: [String] = []
    var index = 0
    while index < kernels.count {
        guard index + 1 < kernels.count, case .batchNormForward(let norm) = kernels[index + 1], !norm.isTraining,
            let layer = foldableLayer(kernels[index], into: norm, plan: plan, uses: uses)
        else {
            rewritten.append(kernels[index])
            index += 1
            continue
        }
        let weightBuffer = Buffer(
            name: "eval.\(layer.name).folded_weight", role: .foldedWeights, elementType: .float32, shape: [layer.layout.storedFloats],
            elements: layer.layout.storedFloats, offset: 0, firstUse: 0, lastUse: 0)
        let biasBuffer = Buffer(
            name: "eval.\(layer.name).folded_bias", role: .foldedWeights, elementType: .float32, shape: [layer.layout.channels],
            elements: layer.layout.channels, offset: 0, firstUse: 0, lastUse: 0)
        newBuffers += [weightBuffer, biasBuffer]
        rewritten.append(
            .batchNormFold(
                BatchNormFold(
                    layer: norm.layer, into: layer.name, layerWeight: layer.weight, layerBias: layer.bias, weight: norm.weight,
                    bias: norm.bias, runningMean: norm.runningMean, runningVar: norm.runningVar, foldedWeight: weightBuffer.slice,
                    foldedBias: biasBuffer.slice, layout: layer.layout, eps: norm.geometry.eps, location: norm.location)))
        orphaned.insert(norm.input.buffer)
        var output = norm.output
        var activation: ActivationForward? = nil
        // An activation that alone reads the batch norm's output runs in the layer's epilogue.
        if index + 2 < kernels.count, case .activationForward(let next) = kernels[index + 2], next.input.buffer == norm.output.buffer,
            next.input.elements == norm.output.elements, uses[norm.output.buffer] == 2
        {
            activation = next
            orphaned.insert(norm.output.buffer)
            output = next.output
        }
        rewritten.append(layer.rewrite(weightBuffer.slice, biasBuffer.slice, output, activation?.activation))
        folds.append("\(norm.layer) into \(layer.name)" + (activation.map { " (with \($0.layer))" } ?? ""))
        index += activation == nil ? 2 : 3
    }
    guard !folds.isEmpty else {
        return .failure(PassSkipped("no evaluation batch_norm follows a convolution or linear layer without an activation of its own"))
    }
    plan.evalKernels = rewritten
    plan.buffers.removeAll { orphaned.contains($0.name) }
    plan.buffers += newBuffers
    plan.fusions.append(
        "in evaluation, batch norm folded into the layer before it (weights scaled before each evaluation batch): " + folds.joined(separator: ", "))
    return .success(folds.joined(separator: ", "))
}

/// The convolution or linear layer a batch norm can fold into: the kernel right before it writes its
/// input, which no other evaluation kernel uses, with no activation or pre-activation of its own, and
/// (a linear) none of the first layer's input passes.
private struct FoldableLayer {
    var name: String
    var weight: Slice
    var bias: Slice?
    var layout: FoldedWeightLayout
    var rewrite: (_ weight: Slice, _ bias: Slice, _ output: Slice, _ activation: ActivationFunction?) -> Kernel
}

private func foldableLayer(_ kernel: Kernel, into norm: BatchNormForward, plan: Plan, uses: [String: Int]) -> FoldableLayer? {
    guard uses[norm.input.buffer] == 2 else { return nil }
    switch kernel {
    case .conv2dForward(let conv):
        guard conv.activation.isIdentity, conv.preactivation == nil, conv.output == norm.input,
            conv.geometry.outChannels == norm.geometry.channels, conv.weight.elements % norm.geometry.channels == 0
        else { return nil }
        let layout = FoldedWeightLayout(channels: norm.geometry.channels, perChannel: conv.weight.elements / norm.geometry.channels, panels: false)
        return FoldableLayer(name: conv.layer, weight: conv.weight, bias: conv.bias, layout: layout) { weight, bias, output, activation in
            var folded = conv
            folded.weight = weight
            folded.bias = bias
            folded.output = output
            if let activation { folded.activation = activation }
            return .conv2dForward(folded)
        }
    case .linearForward(let linear):
        guard linear.activation.isIdentity, linear.preactivation == nil, linear.inputShift == nil, !linear.storedFeatureOrder,
            linear.output == norm.input, norm.geometry.spatial == 1, linear.product.n == norm.geometry.channels
        else { return nil }
        let layout = FoldedWeightLayout(channels: linear.product.n, perChannel: linear.product.k, panels: true)
        guard layout.storedFloats == linear.weight.elements else { return nil }
        return FoldableLayer(name: linear.layer, weight: linear.weight, bias: linear.bias, layout: layout) { weight, bias, output, activation in
            var folded = linear
            folded.weight = weight
            folded.bias = bias
            folded.output = output
            if let activation { folded.activation = activation }
            return .linearForward(folded)
        }
    default:
        return nil
    }
}
