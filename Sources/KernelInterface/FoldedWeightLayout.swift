/// The weight a batch norm is folded into (`BatchNormFold`): `channels` output channels of `perChannel`
/// weights each, in a convolution's row-major [out, in / groups x kh x kw] or in a linear layer's
/// panels (`WeightPanels`, the padding lanes zero).
public struct FoldedWeightLayout: Codable, Equatable, Hashable, Sendable {
    public var channels: Int
    public var perChannel: Int
    public var panels: Bool

    public init(channels: Int, perChannel: Int, panels: Bool) {
        self.channels = channels
        self.perChannel = perChannel
        self.panels = panels
    }

    /// Floats the weight takes, padding included.
    public var storedFloats: Int {
        panels ? WeightPanels.storedFloats(outFeatures: channels, inFeatures: perChannel) : channels * perChannel
    }

    /// Where weight (channel, index) is, counted from the weight's first float.
    @inline(__always)
    public func offset(channel: Int, index: Int) -> Int {
        panels ? WeightPanels.offset(output: channel, input: index, inFeatures: perChannel) : channel * perChannel + index
    }
}
