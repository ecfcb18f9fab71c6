/// The register blocks the matrix product kernels implement. Each is a hand-unrolled micro kernel
/// computing an mr x nr block of the output with its accumulators held in vector registers.
public enum MatmulRegisterBlock: String, Codable, Equatable, Hashable, Sendable, CaseIterable {
    case r8x32
    case r6x16
    case r4x16

    public var mr: Int {
        switch self {
        case .r8x32: return 8
        case .r6x16: return 6
        case .r4x16: return 4
        }
    }

    public var nr: Int {
        switch self {
        case .r8x32: return 32
        case .r6x16, .r4x16: return 16
        }
    }
}

/// How a product C[m,n] = A[m,k] B[k,n] is blocked: the register block (mr x nr), and the cache blocks
/// mc (rows of packed A), nc (columns of B per outer pass) and kc (depth of one packed pass).
///
/// The tile never depends on the number of threads: every output element is one fused multiply-add
/// chain over k = 0..<k whatever the blocking, so results are bit-identical for any thread count.
public struct MatmulTile: Codable, Equatable, Hashable, Sendable {
    public var registerBlock: MatmulRegisterBlock
    public var mc: Int
    public var nc: Int
    public var kc: Int

    public var mr: Int { registerBlock.mr }
    public var nr: Int { registerBlock.nr }

    public init(registerBlock: MatmulRegisterBlock, mc: Int, nc: Int, kc: Int) {
        self.registerBlock = registerBlock
        self.mc = mc
        self.nc = nc
        self.kc = kc
    }

    /// The blocking policy. Pure: the same arguments always give the same tile.
    /// - kc: all of k in one pass, up to the depth at which a B micro panel (kc x nr floats) fills an
    ///   eighth of L2 (1,024 at 1 MiB); deeper products are cut into equal passes. Each pass past the
    ///   first reloads and restores the whole C block, and that cost more than keeping B's micro panel
    ///   in L1 saved: the panels are contiguous and stream from L2 (weights are read in place). On a
    ///   Zen 4 (32 KiB L1) fc1's forward product took 59 us in one pass against 66 us in 13 passes of
    ///   61 (a quarter of L1, the earlier policy), up to 40 % less in the host's slow phases, and the
    ///   512^3 product ran at 112 GFLOP/s against 105; on the Xeon of the earlier sessions one pass and
    ///   a quarter of L1 were within noise of each other (docs/performance.md).
    /// - mc: the A block (mc x kc floats) a column panel meets before the next should fill about half
    ///   of L2.
    /// - nc: all of n (the products of an MLP are narrow), capped so the B block fits in L2 too.
    /// - Parameters: m, n, k are the product's dimensions (C is m x n, the sum runs over k).
    public static func choose(m: Int, n: Int, k: Int, isa: KernelISA, l2Bytes: Int = 1024 * 1024) -> MatmulTile {
        let block = isa.registerBlock
        let mr = block.mr, nr = block.nr
        let floatBytes = MemoryLayout<Float>.size
        let kcLimit = max(16, (l2Bytes / 8) / (nr * floatBytes))
        let depth = max(k, 1)
        let passes = (depth + kcLimit - 1) / kcLimit
        let kc = (depth + passes - 1) / passes
        let mcLimit = max(mr, ((l2Bytes / 2) / (kc * floatBytes)) / mr * mr)
        let mc = min(roundUp(max(m, 1), to: mr), mcLimit)
        let ncLimit = max(nr, ((l2Bytes / 2) / (kc * floatBytes)) / nr * nr)
        let nc = min(roundUp(max(n, 1), to: nr), ncLimit)
        return MatmulTile(registerBlock: block, mc: mc, nc: nc, kc: kc)
    }

    /// The tile with every cache block made a positive multiple of its register block, so that a tile
    /// decoded from a hand-edited plan cannot make a kernel loop forever or overrun its workspace.
    public var normalized: MatmulTile {
        MatmulTile(
            registerBlock: registerBlock,
            mc: max(mr, mc / mr * mr),
            nc: max(nr, nc / nr * nr),
            kc: max(1, kc))
    }

    /// Floats of packing workspace one thread needs for a product of this shape: one packed A micro
    /// panel (A is read in place but for a ragged last row block), the packed B block and one mr x nr
    /// tile for the ragged edges; at least n, the scratch row of a forward product whose features are
    /// stored in another order. The planner reserves this much per thread in the arena; the kernels
    /// allocate nothing.
    public static func workspaceFloats(_ tile: MatmulTile, m: Int, n: Int, k: Int) -> Int {
        let t = tile.normalized
        let nc = min(t.nc, roundUp(max(n, 1), to: t.nr))
        let kc = min(t.kc, max(k, 1))
        return max(t.mr * kc + kc * nc + t.mr * t.nr, n)
    }
}

// The kernels of a layer that absorbs its input's shift (KernelSource's ShiftedInput.swift) need
// scratch beyond the product's.

/// Floats of workspace the shifted forward product needs beyond `MatmulTile.workspaceFloats`: the
/// weight's column sums and one bit mask of nonzero pixels per row.
public func shiftedForwardScratchFloats(m: Int, n: Int, k: Int) -> Int {
    roundUp(max(n, 1), to: weightPanelWidth) + 2 * max(m, 1) * shiftedInputMaskWords(k)
}

/// Floats of workspace the shifted weight gradient needs beyond `MatmulTile.workspaceFloats` (of the
/// product's shape (k, n, m)): the column sums of dy, dy's columns of the part (in the stored order),
/// and a 64-bit mask of nonzero pixels per input for every 64 rows.
public func shiftedWeightGradientScratchFloats(m: Int, n: Int, k: Int) -> Int {
    let width = roundUp(max(n, 1), to: 16)
    return width * (1 + max(m, 1)) + 2 * roundUp(max(k, 1), to: 16) * ((max(m, 1) + 63) / 64)
}

/// 64-bit words of a mask with a bit per input.
public func shiftedInputMaskWords(_ k: Int) -> Int { (max(k, 1) + 63) / 64 }

/// Free-function spelling of `MatmulTile.workspaceFloats`, as the planner's documentation names it.
public func workspaceFloats(_ tile: MatmulTile, _ m: Int, _ n: Int, _ k: Int) -> Int {
    MatmulTile.workspaceFloats(tile, m: m, n: n, k: k)
}

/// `value` rounded up to a multiple of `multiple` (> 0); 0 stays 0. The kernels and the tile policy
/// round `max(value, 1)`, so that an empty dimension still takes one block.
@inlinable @inline(__always)
public func roundUp(_ value: Int, to multiple: Int) -> Int {
    (value + multiple - 1) / multiple * multiple
}
