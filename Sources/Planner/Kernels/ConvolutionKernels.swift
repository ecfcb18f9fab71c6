import KernelInterface
import SpecParser

/// How a convolution's forward computes: `direct` (stride 1, dilation 1) reads row-shifted copies of
/// each sample's padded planes, one vector load per tap and sixteen positions, with no im2col;
/// `im2col` unfolds every patch (any stride and dilation).
public enum ConvolutionMethod: String, Codable, Equatable, Hashable, Sendable {
    case im2col
    case direct

    /// Direct wherever it applies (the input gradient chooses with `ConvInputGradientMethod`). It copies kernelWidth shifted rows per input row instead
    /// of kernelHeight x kernelWidth and multiplies the same products with the same bits.
    public static func choose(_ g: ConvGeometry) -> ConvolutionMethod { g.allowsDirect ? .direct : .im2col }
}

/// output = act(conv2d(input, weight) + bias) (`ConvGeometry`), the bias and activation applied in the
/// product's epilogue. Each part copies (direct) or unfolds (im2col) one sample at a time into its
/// share of the workspace. Parts split the batch's samples.
public struct Conv2dForward: KernelStep {
    public var layer: String
    public var input: Slice
    public var weight: Slice
    public var bias: Slice?
    public var output: Slice
    public var preactivation: Slice?
    public var geometry: ConvGeometry
    public var activation: ActivationFunction
    public var method: ConvolutionMethod
    public var batch: Int
    public var threads: Int
    public var location: SourceLocation

    public var reads: [Slice] { [input, weight] + (bias.map { [$0] } ?? []) }
    public var writes: [Slice] { [output] + (preactivation.map { [$0] } ?? []) }
    public var flops: Int { 2 * batch * geometry.outputFloats * geometry.patchSize }
    public var label: String {
        let epilogue = (bias == nil ? "" : "+bias") + (activation.isIdentity ? "" : "+\(activation.code)")
        return "\(layer).conv2d\(epilogue)"
    }
    public var source: SourceLocation? { location }
    public var algorithm: String? {
        let groups = geometry.groups > 1 ? " x\(geometry.groups) groups" : ""
        switch method {
        case .im2col: return "im2col \(geometry.patchSize)x\(geometry.outPixels)\(groups), 8 ch x 16 px registers, by sample"
        case .direct: return "direct, \(directCopiesText(geometry))\(groups), \(directBlockText(geometry)), by sample"
        }
    }

    public func mapSlices(_ f: (Slice) -> Slice) -> Conv2dForward {
        var k = self
        k.input = f(input)
        k.weight = f(weight)
        k.bias = bias.map(f)
        k.output = f(output)
        k.preactivation = preactivation.map(f)
        return k
    }
}

/// How `Conv2dBackwardWeights` computes.
public enum ConvWeightGradientMethod: String, Codable, Sendable {
    /// Any geometry: each part unfolds its patch rows of one sample at a time (im2col) and multiplies
    /// them by dy; parts split the patch rows.
    case im2colRows
    /// Stride 1: dy against copies of the input shifted per kernel column (`Stride1WeightGradientLayout`),
    /// no unfolding, accumulators in registers over the whole batch; parts split the layout's tasks.
    case stride1
}

/// weightGradient and biasGradient from the layer's input and the output gradient, by `method`.
public struct Conv2dBackwardWeights: KernelStep {
    public var layer: String
    public var input: Slice
    public var outputGradient: Slice
    public var weightGradient: Slice
    public var biasGradient: Slice?
    public var geometry: ConvGeometry
    public var method: ConvWeightGradientMethod
    public var batch: Int
    public var threads: Int
    public var location: SourceLocation

    public var reads: [Slice] { [input, outputGradient] }
    public var writes: [Slice] { [weightGradient] + (biasGradient.map { [$0] } ?? []) }
    public var flops: Int { 2 * batch * geometry.outputFloats * geometry.patchSize }
    public var label: String { biasGradient == nil ? "\(layer).conv2d_grad_weight" : "\(layer).conv2d_grad_weight+bias" }
    public var algorithm: String? {
        switch method {
        case .im2colRows: return "im2col rows per sample, dy x columns in 4 ch x 4 rows x 16 px registers, by patch row"
        case .stride1:
            guard let layout = Stride1WeightGradientLayout(geometry) else { return nil }
            return "input shifted per kernel column (\(geometry.kernelWidth) copies), \(layout.channelBlock) ch x \(layout.rowBlock) kernel rows "
                + "x 16 px registers over the batch, \(layout.samplesPerPass) samples a pass, by \(layout.tasks) tasks"
        }
    }
    public var source: SourceLocation? { location }
    public var isBackward: Bool { true }

    public func mapSlices(_ f: (Slice) -> Slice) -> Conv2dBackwardWeights {
        var k = self
        k.input = f(input)
        k.outputGradient = f(outputGradient)
        k.weightGradient = f(weightGradient)
        k.biasGradient = biasGradient.map(f)
        return k
    }
}

/// The row-shifted copies of one group of one sample that a direct convolution reads.
func directCopiesText(_ g: ConvGeometry) -> String {
    let chunk = g.shiftedRowChunkChannels, chunks = (g.groupInChannels + chunk - 1) / chunk
    let copies = "\(chunk * g.kernelWidth) row-shifted copies \(g.outHeight + g.kernelHeight - 1)x\(g.outWidth)"
    return chunks > 1 ? "\(copies) per \(chunk) of \(g.groupInChannels) channels" : copies
}

/// The direct kernel's first register block: the most output channels the group has, by vectors of
/// 16 positions.
func directBlockText(_ g: ConvGeometry) -> String {
    let channels = ConvGeometry.directBlockChannels(left: g.groupOutChannels)
    return "\(channels) ch x \(ConvGeometry.directBlockVectors(channels: channels)) x 16 px registers"
}

/// How a convolution's input gradient computes: `sampleLanes` (stride 1, dilation 1) puts sixteen
/// samples in the vector lanes and multiplies only the taps whose dy position lies inside dy (no
/// padding products, no col2im); measured on LeNet's conv2 it takes about 40 % of the time of the
/// direct transposed convolution, which multiplies dy's zero padding, and of im2col's product and
/// col2im (docs/performance.md). `im2col` takes the rest.
public enum ConvInputGradientMethod: String, Codable, Equatable, Hashable, Sendable {
    case im2col
    case sampleLanes

    public static func choose(_ g: ConvGeometry) -> ConvInputGradientMethod { g.allowsDirect ? .sampleLanes : .im2col }
}

/// inputGradient = the transposed convolution of the output gradient: sample lanes (dy of sixteen
/// samples transposed into the workspace; parts split groups of sixteen samples) or im2col (columns
/// in the workspace, then col2im; parts split the samples).
public struct Conv2dBackwardInput: KernelStep {
    public var layer: String
    public var outputGradient: Slice
    public var weight: Slice
    public var inputGradient: Slice
    public var geometry: ConvGeometry
    public var method: ConvInputGradientMethod
    public var batch: Int
    public var threads: Int
    public var location: SourceLocation

    public var reads: [Slice] { [outputGradient, weight] }
    public var writes: [Slice] { [inputGradient] }
    public var flops: Int { 2 * batch * geometry.outputFloats * geometry.patchSize }
    public var label: String { "\(layer).conv2d_grad_input" }
    public var algorithm: String? {
        switch method {
        case .im2col: return "w x dy into \(geometry.patchSize)x\(geometry.outPixels) scratch, col2im, by sample"
        case .sampleLanes:
            let channels = ConvGeometry.sampleLaneBlockChannels(left: geometry.groupInChannels)
            return "16 samples in lanes, dy transposed, taps inside dy only, \(channels) ch x 4 px registers, by 16 samples"
        }
    }
    public var source: SourceLocation? { location }
    public var isBackward: Bool { true }

    public func mapSlices(_ f: (Slice) -> Slice) -> Conv2dBackwardInput {
        var k = self
        k.outputGradient = f(outputGradient)
        k.weight = f(weight)
        k.inputGradient = f(inputGradient)
        return k
    }
}

/// Max or average pooling (`PoolGeometry`); a max pool writes each output's argmax into `indices`
/// (training only). Parts split the planes.
public struct Pool2dForward: KernelStep {
    public var layer: String
    public var input: Slice
    public var output: Slice
    public var indices: Slice?
    public var geometry: PoolGeometry
    public var kind: PoolingKind
    public var threads: Int
    public var location: SourceLocation

    public var reads: [Slice] { [input] }
    public var writes: [Slice] { [output] + (indices.map { [$0] } ?? []) }
    public var flops: Int { output.elements * geometry.kernelHeight * geometry.kernelWidth }
    public var label: String { "\(layer).\(kind == .max ? "max" : "avg")_pool2d" }
    public var algorithm: String? {
        let g = geometry
        if g.adaptive { return "adaptive windows \(g.inHeight)x\(g.inWidth) to \(g.outHeight)x\(g.outWidth), by plane" }
        if g.isInside2x2 { return "2x2 windows /2x2, 8 a vector (even/odd column shuffles), by plane" }
        let dilation = g.dilationHeight == 1 && g.dilationWidth == 1 ? "" : " dilation \(g.dilationHeight)x\(g.dilationWidth)"
        return "\(g.kernelHeight)x\(g.kernelWidth) windows /\(g.strideHeight)x\(g.strideWidth)\(dilation), by plane"
    }
    public var source: SourceLocation? { location }

    public func mapSlices(_ f: (Slice) -> Slice) -> Pool2dForward {
        var k = self
        k.input = f(input)
        k.output = f(output)
        k.indices = indices.map(f)
        return k
    }
}

/// The pooling's input gradient: each output's gradient goes to its argmax (max) or is shared over its
/// window (average). With `reluValues` (the pool-relu-backward pass) it is also the backward pass of the
/// ReLU whose output the max pool read: the gradient is multiplied by 1 where that output is above 0
/// and by 0 elsewhere, and `inputGradient` is the ReLU's input gradient.
public struct Pool2dBackward: KernelStep {
    public var layer: String
    public var outputGradient: Slice
    public var indices: Slice?
    public var inputGradient: Slice
    public var geometry: PoolGeometry
    public var threads: Int
    public var location: SourceLocation
    /// The ReLU output the pool read, or with `reluValuesArePooled` the pool's output (windows that do
    /// not overlap: the ReLU output at each window's argmax); the ReLU layer's name.
    public var reluValues: Slice? = nil
    public var reluValuesArePooled = false
    public var reluLayer: String? = nil

    public var reads: [Slice] { [outputGradient] + (indices.map { [$0] } ?? []) + (reluValues.map { [$0] } ?? []) }
    public var writes: [Slice] { [inputGradient] }
    public var flops: Int { inputGradient.elements + outputGradient.elements * (reluValues == nil ? 1 : 2) }
    public var label: String {
        "\(layer).\(indices == nil ? "avg" : "max")_pool2d_backward" + (reluLayer.map { " + \($0).relu_backward" } ?? "")
    }
    public var source: SourceLocation? { location }
    public var isBackward: Bool { true }
    public var passes: [String] { reluValues == nil ? [] : [PlanPass.poolReluBackward.rawValue] }
    public var algorithm: String? {
        guard reluValues != nil else { return nil }
        return reluValuesArePooled
            ? "scatter, ReLU derivative from the pooled value, by plane" : "scatter, then the ReLU derivative over the plane, by plane"
    }

    public func mapSlices(_ f: (Slice) -> Slice) -> Pool2dBackward {
        var k = self
        k.outputGradient = f(outputGradient)
        k.indices = indices.map(f)
        k.inputGradient = f(inputGradient)
        k.reluValues = reluValues.map(f)
        return k
    }
}

/// Batch normalization. In training (`savedMean` and `savedInvStd` set) it normalizes with the batch's
/// statistics, keeps them for the backward pass, and updates the running statistics and
/// num_batches_tracked in the model state; in evaluation it uses the running statistics. Parts split
/// the channels.
public struct BatchNormForward: KernelStep {
    public var layer: String
    public var input: Slice
    public var output: Slice
    public var weight: Slice?
    public var bias: Slice?
    public var runningMean: Slice
    public var runningVar: Slice
    public var batchesTracked: Slice
    public var savedMean: Slice?
    public var savedInvStd: Slice?
    public var geometry: BatchNormGeometry
    public var threads: Int
    public var location: SourceLocation

    public var isTraining: Bool { savedMean != nil }
    public var reads: [Slice] {
        [input, runningMean, runningVar] + (weight.map { [$0] } ?? []) + (bias.map { [$0] } ?? [])
            + (isTraining ? [batchesTracked] : [])
    }
    public var writes: [Slice] {
        [output] + (isTraining ? [runningMean, runningVar, batchesTracked] : []) + (savedMean.map { [$0] } ?? [])
            + (savedInvStd.map { [$0] } ?? [])
    }
    public var flops: Int { input.elements * (isTraining ? 7 : 3) }
    public var label: String { "\(layer).batch_norm\(isTraining ? "" : "_eval")" }
    public var algorithm: String? { isTraining ? "batch statistics in 16 lanes, by channel" : "running statistics, by channel" }
    public var source: SourceLocation? { location }

    public func mapSlices(_ f: (Slice) -> Slice) -> BatchNormForward {
        var k = self
        k.input = f(input)
        k.output = f(output)
        k.weight = weight.map(f)
        k.bias = bias.map(f)
        k.runningMean = f(runningMean)
        k.runningVar = f(runningVar)
        k.batchesTracked = f(batchesTracked)
        k.savedMean = savedMean.map(f)
        k.savedInvStd = savedInvStd.map(f)
        return k
    }
}

/// The gradient of training-mode batch normalization: the input's, and the weight's and bias's.
public struct BatchNormBackward: KernelStep {
    public var layer: String
    public var outputGradient: Slice
    public var input: Slice
    public var weight: Slice?
    public var savedMean: Slice
    public var savedInvStd: Slice
    public var inputGradient: Slice
    public var weightGradient: Slice?
    public var biasGradient: Slice?
    public var geometry: BatchNormGeometry
    public var threads: Int
    public var location: SourceLocation

    public var reads: [Slice] { [outputGradient, input, savedMean, savedInvStd] + (weight.map { [$0] } ?? []) }
    public var writes: [Slice] { [inputGradient] + (weightGradient.map { [$0] } ?? []) + (biasGradient.map { [$0] } ?? []) }
    public var flops: Int { input.elements * 8 }
    public var label: String { "\(layer).batch_norm_backward" }
    public var algorithm: String? { "two channel sums, then dx, by channel" }
    public var source: SourceLocation? { location }
    public var isBackward: Bool { true }

    public func mapSlices(_ f: (Slice) -> Slice) -> BatchNormBackward {
        var k = self
        k.outputGradient = f(outputGradient)
        k.input = f(input)
        k.weight = weight.map(f)
        k.savedMean = f(savedMean)
        k.savedInvStd = f(savedInvStd)
        k.inputGradient = f(inputGradient)
        k.weightGradient = weightGradient.map(f)
        k.biasGradient = biasGradient.map(f)
        return k
    }
}
