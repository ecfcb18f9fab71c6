/// How the weight gradient of a stride-1 convolution (`conv2dBackwardWeightsStride1`) lays out its work.
///
/// For each input channel and kernel column kw, one copy of the zero-padded input shifted left by
/// kw * dilationWidth and cut to outWidth columns: shifted[iy, ox] = xpad[iy, ox + kw * dilationWidth].
/// Output position p = oy * outWidth + ox then reads tap (kh, kw) at shifted[p + kh * dilationHeight *
/// outWidth], so each tap's inputs are one contiguous run of the positions with nothing wasted (dy's
/// copy is zero past the last position, up to a whole vector).
///
/// The work is split into tasks: one kernel column x a block of output channels x one input channel x
/// a block of kernel rows, each owning its weight-gradient elements (the first task of a channel block,
/// input channel 0, kernel column 0, kernel row block 0, also owns the block's bias gradient). Parts
/// take contiguous task ranges, so the bits do not depend on the split.
public struct Stride1WeightGradientLayout: Equatable, Sendable {
    public let geometry: ConvGeometry
    /// Rows of the zero-padded input that windows reach.
    public let paddedHeight: Int
    /// Output positions of one sample, and the 16-float vectors covering them.
    public let positions: Int
    public let vectors: Int
    /// Floats of one shifted copy (one input channel, one kernel column): what the last tap's run and
    /// the row copies (whole vectors, zeros past the row) reach; a multiple of 16.
    public let shiftedPlaneFloats: Int
    /// Whether dy is copied (zeros past the last position): only when the positions do not fill whole
    /// vectors; otherwise the kernel reads dy where it is.
    public let copiesOutputGradient: Bool
    /// Floats of one channel's dy copy (0 without copies).
    public let outputPlaneFloats: Int
    /// Output channels per block (the last block of a group may have fewer) and blocks per group.
    public let channelBlock: Int
    public let channelBlocks: Int
    /// Kernel rows per block (the last block may have fewer) and blocks per kernel column.
    public let rowBlock: Int
    public let rowBlocks: Int
    /// Samples copied at a time (fixed by the geometry, so the copies stay in the L2 cache); the sums'
    /// order does not depend on it.
    public let samplesPerPass: Int

    /// Most output channels and kernel rows in one register block (4 x 5 accumulators of 16 lanes).
    public static let maxChannelBlock = 4
    public static let maxRowBlock = 5
    /// Floats of copies a pass aims to keep under (512 KiB, half the L2 cache).
    static let passFloats = 128 * 1024

    /// nil unless both strides are 1.
    public init?(_ g: ConvGeometry) {
        guard g.strideHeight == 1, g.strideWidth == 1, g.outHeight > 0, g.outWidth > 0 else { return nil }
        geometry = g
        let reach = (g.kernelHeight - 1) * g.dilationHeight * g.outWidth
        paddedHeight = g.outHeight + (g.kernelHeight - 1) * g.dilationHeight
        positions = g.outHeight * g.outWidth
        vectors = (positions + 15) / 16
        // A row copy stores up to 15 zeros past the row's outWidth floats.
        shiftedPlaneFloats = Self.roundUp16(max(vectors * 16 + reach, paddedHeight * g.outWidth + 15))
        copiesOutputGradient = positions % 16 != 0
        outputPlaneFloats = copiesOutputGradient ? vectors * 16 : 0
        let out = g.groupOutChannels
        channelBlocks = (out + Self.maxChannelBlock - 1) / Self.maxChannelBlock
        channelBlock = (out + channelBlocks - 1) / channelBlocks
        rowBlocks = (g.kernelHeight + Self.maxRowBlock - 1) / Self.maxRowBlock
        rowBlock = (g.kernelHeight + rowBlocks - 1) / rowBlocks
        let sampleFloats = g.inChannels * g.kernelWidth * shiftedPlaneFloats + g.outChannels * outputPlaneFloats
        samplesPerPass = max(1, min(16, Self.passFloats / sampleFloats))
    }

    static func roundUp16(_ n: Int) -> Int { (n + 15) / 16 * 16 }

    /// Floats of one sample's copies: every shifted input plane and every dy plane.
    public var sampleFloats: Int {
        geometry.inChannels * geometry.kernelWidth * shiftedPlaneFloats + geometry.outChannels * outputPlaneFloats
    }

    /// Tasks: groups x kernel columns x channel blocks x the group's input channels x row blocks. The
    /// kernel column goes before the channels so that a part's tasks need few of the shifted copies.
    public var tasks: Int {
        geometry.groups * channelBlocks * geometry.groupInChannels * geometry.kernelWidth * rowBlocks
    }

    /// Sixteen lanes per weight and per bias, indexed like the weight ([out, patch]) and then the bias.
    public var accumulatorFloats: Int { (geometry.weightFloats + geometry.outChannels) * 16 }

    /// Floats of one part's scratch, enough for every task: 16 for alignment to 64 bytes, the
    /// accumulators, then one pass's copies.
    public var scratchFloats: Int { 16 + accumulatorFloats + samplesPerPass * sampleFloats }

    /// One task's share of the weight gradient.
    public struct Task: Equatable, Sendable {
        /// The first output channel and how many (1...maxChannelBlock).
        public var outChannel: Int
        public var outChannels: Int
        /// The input channel (of the whole input) and the kernel column.
        public var inChannel: Int
        public var kernelColumn: Int
        /// The first kernel row and how many (1...maxRowBlock).
        public var kernelRow: Int
        public var kernelRows: Int
        /// The weight's patch index (within the output channel's row) of the first element; the
        /// block's next kernel rows are kernelWidth further each.
        public var patchIndex: Int
        /// Whether this task also sums the bias gradient of its output channels.
        public var ownsBias: Bool
    }

    /// The group of task `index`.
    public func group(ofTask index: Int) -> Int { index / (tasks / geometry.groups) }

    public func task(_ index: Int) -> Task {
        let g = geometry
        var rest = index
        let rowBlockIndex = rest % rowBlocks
        rest /= rowBlocks
        let channelInGroup = rest % g.groupInChannels
        rest /= g.groupInChannels
        let block = rest % channelBlocks
        rest /= channelBlocks
        let column = rest % g.kernelWidth
        let group = rest / g.kernelWidth
        let firstOut = block * channelBlock, firstRow = rowBlockIndex * rowBlock
        return Task(
            outChannel: group * g.groupOutChannels + firstOut, outChannels: min(channelBlock, g.groupOutChannels - firstOut),
            inChannel: group * g.groupInChannels + channelInGroup, kernelColumn: column, kernelRow: firstRow,
            kernelRows: min(rowBlock, g.kernelHeight - firstRow),
            patchIndex: (channelInGroup * g.kernelHeight + firstRow) * g.kernelWidth + column,
            ownsBias: channelInGroup == 0 && column == 0 && rowBlockIndex == 0)
    }
}
