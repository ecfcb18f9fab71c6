/// The shape of one 2-D convolution over NCHW tensors, as PyTorch's nn.Conv2d computes it: input
/// [batch, inChannels, inHeight, inWidth], weight [outChannels, inChannels / groups, kernelHeight,
/// kernelWidth] (row-major, PyTorch's layout), output [batch, outChannels, outHeight, outWidth].
/// `padTop` and `padLeft` are the zeros before the first row and column (the ones after follow from
/// the output size: `same` padding may put one more at the bottom or right).
public struct ConvGeometry: Codable, Equatable, Hashable, Sendable {
    public var inChannels: Int
    public var inHeight: Int
    public var inWidth: Int
    public var outChannels: Int
    public var outHeight: Int
    public var outWidth: Int
    public var kernelHeight: Int
    public var kernelWidth: Int
    public var strideHeight: Int
    public var strideWidth: Int
    public var padTop: Int
    public var padLeft: Int
    public var dilationHeight: Int
    public var dilationWidth: Int
    public var groups: Int

    public init(
        inChannels: Int, inHeight: Int, inWidth: Int, outChannels: Int, outHeight: Int, outWidth: Int, kernelHeight: Int,
        kernelWidth: Int, strideHeight: Int, strideWidth: Int, padTop: Int, padLeft: Int, dilationHeight: Int,
        dilationWidth: Int, groups: Int
    ) {
        self.inChannels = inChannels
        self.inHeight = inHeight
        self.inWidth = inWidth
        self.outChannels = outChannels
        self.outHeight = outHeight
        self.outWidth = outWidth
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.strideHeight = strideHeight
        self.strideWidth = strideWidth
        self.padTop = padTop
        self.padLeft = padLeft
        self.dilationHeight = dilationHeight
        self.dilationWidth = dilationWidth
        self.groups = groups
    }

    /// Input channels of one group.
    public var groupInChannels: Int { inChannels / groups }
    /// Output channels of one group.
    public var groupOutChannels: Int { outChannels / groups }
    /// Rows of one group's column matrix: the weights one output value multiplies.
    public var patchSize: Int { groupInChannels * kernelHeight * kernelWidth }
    /// Output positions of one channel.
    public var outPixels: Int { outHeight * outWidth }
    public var inPixels: Int { inHeight * inWidth }
    public var inputFloats: Int { inChannels * inPixels }
    public var outputFloats: Int { outChannels * outPixels }
    public var weightFloats: Int { outChannels * patchSize }
    /// Floats of one sample's column matrices (every group): [groups, patchSize, outPixels].
    public var columnFloats: Int { groups * patchSize * outPixels }
    /// Floats of the scratch the weight gradient needs for `rows` patch rows: sixteen lanes per output
    /// channel and row, and the rows' columns of one group of one sample.
    public func weightGradientScratchFloats(rows: Int) -> Int { rows * (outChannels * 16 + outPixels) }

    /// Whether the direct kernels (row-shifted copies, no im2col) compute this convolution: stride 1
    /// and dilation 1, any kernel, padding and groups.
    public var allowsDirect: Bool { strideHeight == 1 && strideWidth == 1 && dilationHeight == 1 && dilationWidth == 1 }
    /// Input channels the direct kernel copies at a time: as many of a group's as keep their copies
    /// within 6,144 floats (24 KB, in L1 with the weights), at least one.
    public var shiftedRowChunkChannels: Int {
        let perChannel = kernelWidth * (outHeight + kernelHeight - 1) * outWidth
        return max(1, min(groupInChannels, 6144 / max(perChannel, 1)))
    }
    /// Floats of the direct forward's scratch: one chunk of channels' kernelWidth row-shifted copies of
    /// their padded planes, (outHeight + kernelHeight - 1) rows of outWidth floats each, and 16 spare
    /// floats.
    public var shiftedRowFloats: Int {
        shiftedRowChunkChannels * kernelWidth * (outHeight + kernelHeight - 1) * outWidth + 16
    }
    /// dy of sixteen samples transposed to [o][oy][ox][16] for the sample-lane input gradient.
    public var sampleLaneInputGradientFloats: Int { outputFloats * 16 }

    /// Output channels in the direct forward's register block while `left` remain: 8, 6, 4, 2 or 1
    /// (the kernel's blocks, and what `mlpc plan` says of them).
    @inlinable
    public static func directBlockChannels(left: Int) -> Int { left >= 8 ? 8 : left >= 6 ? 6 : left >= 4 ? 4 : left >= 2 ? 2 : 1 }
    /// Vectors of sixteen positions in a direct forward block of `channels` output channels: 3 for 8
    /// channels (24 accumulators), else 4.
    @inlinable
    public static func directBlockVectors(channels: Int) -> Int { channels == 8 ? 3 : 4 }
    /// Input channels in the sample-lane input gradient's register block while `left` remain: 6, 4,
    /// 2 or 1.
    @inlinable
    public static func sampleLaneBlockChannels(left: Int) -> Int { left >= 6 ? 6 : left >= 4 ? 4 : left >= 2 ? 2 : 1 }
}

/// The shape of one 2-D pooling over NCHW tensors (PyTorch's max_pool2d / avg_pool2d /
/// adaptive_avg_pool2d). Windows start at `index * stride - pad` and take every `dilation`-th value
/// (a max pool's dilation); an adaptive pool's window i spans floor(i * in / out) ..< ceil((i + 1) * in /
/// out) instead.
public struct PoolGeometry: Codable, Equatable, Hashable, Sendable {
    public var channels: Int
    public var inHeight: Int
    public var inWidth: Int
    public var outHeight: Int
    public var outWidth: Int
    public var kernelHeight: Int
    public var kernelWidth: Int
    public var strideHeight: Int
    public var strideWidth: Int
    public var padTop: Int
    public var padLeft: Int
    public var dilationHeight: Int
    public var dilationWidth: Int
    /// An average's divisor: the window inside the padded input (PyTorch's count_include_pad=True), or
    /// only the input values it covers.
    public var countIncludePad: Bool
    /// adaptive_avg_pool2d's windows (kernel, stride, padding and dilation unused).
    public var adaptive: Bool

    public init(
        channels: Int, inHeight: Int, inWidth: Int, outHeight: Int, outWidth: Int, kernelHeight: Int, kernelWidth: Int,
        strideHeight: Int, strideWidth: Int, padTop: Int, padLeft: Int, dilationHeight: Int = 1, dilationWidth: Int = 1,
        countIncludePad: Bool = true, adaptive: Bool = false
    ) {
        self.dilationHeight = dilationHeight
        self.dilationWidth = dilationWidth
        self.countIncludePad = countIncludePad
        self.adaptive = adaptive
        self.channels = channels
        self.inHeight = inHeight
        self.inWidth = inWidth
        self.outHeight = outHeight
        self.outWidth = outWidth
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.strideHeight = strideHeight
        self.strideWidth = strideWidth
        self.padTop = padTop
        self.padLeft = padLeft
    }

    public var inPixels: Int { inHeight * inWidth }
    public var outPixels: Int { outHeight * outWidth }

    /// The 2x2 / 2 pool without padding or dilation whose windows all lie inside the input: its forward
    /// pass runs eight windows a vector.
    public var isInside2x2: Bool {
        !adaptive && kernelHeight == 2 && kernelWidth == 2 && strideHeight == 2 && strideWidth == 2 && padTop == 0 && padLeft == 0
            && dilationHeight == 1 && dilationWidth == 1 && 2 * outHeight <= inHeight && 2 * outWidth <= inWidth
    }
}

/// Batch normalization's settings: `channels` statistics, each over batch x `spatial` values (spatial
/// is 1 after a linear layer, H x W after a convolution).
public struct BatchNormGeometry: Codable, Equatable, Hashable, Sendable {
    public var channels: Int
    public var spatial: Int
    public var eps: Float
    /// The running statistics' update factor.
    public var momentum: Float
    /// PyTorch's momentum=None: the running statistics are the cumulative average of the batches'
    /// (factor 1 / num_batches_tracked, counting the batch at hand); `momentum` is then unused.
    public var cumulativeAverage: Bool

    public init(channels: Int, spatial: Int, eps: Float, momentum: Float, cumulativeAverage: Bool = false) {
        self.channels = channels
        self.spatial = spatial
        self.eps = eps
        self.momentum = momentum
        self.cumulativeAverage = cumulativeAverage
    }
}
