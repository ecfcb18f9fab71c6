/// How a linear layer's weight is laid out in the parameter block (and, the same, in its gradient and
/// optimizer moments): in panels of `weightPanelWidth` output features. Weight [out, in] element (o, i),
/// in PyTorch's terms, is at
///
///     (o / 32) * in * 32 + i * 32 + o % 32
///
/// and the last panel is padded with zeros to 32 features. This is the layout the forward product wants
/// for its B operand (a panel is read in place as a 32-wide micro panel, nothing is packed), and 32
/// consecutive output features are one contiguous block: the thread that computes those features in the
/// forward product also computes their gradient and updates them, so the weight's cache lines stay in
/// one core through a whole training step.
public let weightPanelWidth = 32

public enum WeightPanels {
    /// Panels of a weight with `outFeatures` outputs.
    public static func panels(outFeatures: Int) -> Int { (outFeatures + weightPanelWidth - 1) / weightPanelWidth }

    /// Floats a weight [outFeatures, inFeatures] takes, padding included.
    public static func storedFloats(outFeatures: Int, inFeatures: Int) -> Int {
        panels(outFeatures: outFeatures) * weightPanelWidth * inFeatures
    }

    /// Where element (output, input) is, counted from the weight's first float.
    @inline(__always)
    public static func offset(output: Int, input: Int, inFeatures: Int) -> Int {
        (output / weightPanelWidth) * inFeatures * weightPanelWidth + input * weightPanelWidth + output % weightPanelWidth
    }

    /// The floats, counted from the weight's first float, of output features `features` (whose bounds are
    /// multiples of the panel width, or the weight's end): whole panels, so one contiguous range.
    public static func storedRange(features: Range<Int>, outFeatures: Int, inFeatures: Int) -> Range<Int> {
        guard !features.isEmpty else { return 0..<0 }
        let first = features.lowerBound / weightPanelWidth
        let end = features.upperBound >= outFeatures ? panels(outFeatures: outFeatures) : features.upperBound / weightPanelWidth
        return (first * weightPanelWidth * inFeatures)..<(end * weightPanelWidth * inFeatures)
    }
}

/// Whether a layer with `outFeatures` outputs can give each of `parts` parts at least one whole panel:
/// then its weight gradient splits by output feature (`outputFeatureShare`), and the optimizer step
/// gives each part the panels it computed.
public func splitsByOutputFeature(outFeatures: Int, parts: Int) -> Bool {
    WeightPanels.panels(outFeatures: outFeatures) >= parts
}

/// The output features part `part` of `parts` owns in a linear layer's products and its optimizer step:
/// whole panels of `weightPanelWidth` features (`partRange` with that granule), so the same split is
/// the forward product's columns, the weight gradient's columns and the optimizer's share.
public func outputFeatureShare(outFeatures: Int, part: Int, parts: Int) -> Range<Int> {
    partRange(count: outFeatures, granule: weightPanelWidth, part: part, parts: parts)
}

/// A linear layer whose output features sit in the parameter block (weight panels, bias, gradients,
/// optimizer state) in another order than the model's: stored position s holds model feature
/// `modelFeature[s]`. The runtime stores features that were not live last, so that their weight
/// gradient and optimizer work can be skipped (`StoredFeatureOrder` in Execution). The order maps every
/// part's `outputFeatureShare` onto itself, so the part that computes a stored feature also writes its
/// model place. Each element's sums keep their order wherever it is stored, so any order gives the same
/// bits.
public struct FeatureOrder {
    /// Stored position -> model feature, a permutation of 0..<outFeatures.
    public var modelFeature: UnsafePointer<Int32>
    /// Per stored position: set to 1 by the weight-gradient kernel when the feature's output gradient had
    /// a nonzero element in a step (the feature was live). Each is written by the part that owns it.
    public var live: UnsafeMutablePointer<Float>

    public init(modelFeature: UnsafePointer<Int32>, live: UnsafeMutablePointer<Float>) {
        self.modelFeature = modelFeature
        self.live = live
    }
}
