import KernelInterface
import SpecParser

/// An evaluation batch norm folded into the convolution or linear layer before it (the fold-batch-norm
/// pass): from the layer's weight and bias and the batch norm's parameters and running statistics as
/// they are when the evaluation runs, the scaled weight and the bias that layer then uses, so that its
/// output is the batch norm's.
public struct BatchNormFold: KernelStep {
    /// The batch norm layer, and the layer it is folded into.
    public var layer: String
    public var into: String
    public var layerWeight: Slice
    public var layerBias: Slice?
    public var weight: Slice?
    public var bias: Slice?
    public var runningMean: Slice
    public var runningVar: Slice
    public var foldedWeight: Slice
    public var foldedBias: Slice
    public var layout: FoldedWeightLayout
    public var eps: Float
    public var location: SourceLocation

    public var reads: [Slice] {
        [layerWeight, runningMean, runningVar] + [layerBias, weight, bias].compactMap { $0 }
    }
    public var writes: [Slice] { [foldedWeight, foldedBias] }
    public var flops: Int { layout.channels * (layout.perChannel + 6) }
    public var threads: Int { 1 }
    public var label: String { "\(layer).fold_into_\(into)" }
    public var algorithm: String? { "weight x gamma / sqrt(running_var + eps) per channel" }
    public var source: SourceLocation? { location }
    public var passes: [String] { [PlanPass.foldBatchNorm.rawValue] }

    public func mapSlices(_ f: (Slice) -> Slice) -> BatchNormFold {
        var k = self
        k.layerWeight = f(layerWeight)
        k.layerBias = layerBias.map(f)
        k.weight = weight.map(f)
        k.bias = bias.map(f)
        k.runningMean = f(runningMean)
        k.runningVar = f(runningVar)
        k.foldedWeight = f(foldedWeight)
        k.foldedBias = f(foldedBias)
        return k
    }
}
