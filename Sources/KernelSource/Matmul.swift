import KernelInterface

/// What happens to a finished block of C after the micro kernel stored its raw sums.
struct MatmulEpilogue {
    enum Kind {
        /// Store the sums as they are (intermediate k passes, weight gradients).
        case raw
        /// z = sum + bias; preact = z (if wanted); C = act(z).
        case forward
        /// C = sum * act'(previous layer), from its output or preactivation.
        case backwardInput
    }

    var kind: Kind
    var activation: ActivationCode = .identity
    var slope: Float = 0
    var bias: UnsafePointer<Float>? = nil
    var preact: UnsafeMutablePointer<Float>? = nil
    var prevOutput: UnsafePointer<Float>? = nil
    var prevPreact: UnsafePointer<Float>? = nil
    /// Row stride of preact / prevOutput / prevPreact (they have C's shape).
    var ld: Int = 0
    /// A forward product whose input's shift is absorbed (ShiftedInput.swift): z = sum + shift *
    /// columnSums[col] (one fused multiply-add) before the bias.
    var shift: Float = 0
    var columnSums: UnsafePointer<Float>? = nil

    static let raw = MatmulEpilogue(kind: .raw)

    /// Finishes 16 (or, at ragged edges, `lanes`) consecutive outputs of row `row` starting at column
    /// `col`, writing them to dst. Full blocks and ragged edges go through this same code, so a split
    /// that moves an element from one to the other does not change its bits.
    @inline(__always)
    func apply(_ sum: SIMD16<Float>, _ dst: UnsafeMutablePointer<Float>, _ row: Int, _ col: Int, _ lanes: Int) {
        switch kind {
        case .raw:
            storeLanes(sum, dst, lanes)
        case .forward:
            var z = sum
            if let columnSums { z = z.addingProduct(SIMD16<Float>(repeating: shift), loadLanes(columnSums + col, lanes)) }
            if let bias { z += loadLanes(bias + col, lanes) }
            if let preact { storeLanes(z, preact + row * ld + col, lanes) }
            // ReLU written out (activate16's expression): the call, with its switch and the vector
            // passed in pieces, cost more than the arithmetic.
            storeLanes(activation == .relu ? z.replacing(with: 0, where: .!(z .> 0)) : activate16(z, activation, slope), dst, lanes)
        case .backwardInput:
            let offset = row * ld + col
            let y = prevOutput.map { loadLanes($0 + offset, lanes) } ?? SIMD16()
            let x = prevPreact.map { loadLanes($0 + offset, lanes) } ?? SIMD16()
            storeLanes(sum * activationDerivative16(output: y, preact: x, activation, slope), dst, lanes)
        }
    }

    /// Finishes a rows x cols block of sums at src (row stride lds) into dst (row stride ldd), whose
    /// first element is C's (row, col). One call per register block: the switch over the kind and the
    /// activation's code stay out of the micro kernel.
    @inline(never)
    func finish(
        _ src: UnsafePointer<Float>, _ lds: Int, _ dst: UnsafeMutablePointer<Float>, _ ldd: Int,
        rows: Int, cols: Int, row: Int, col: Int
    ) {
        if kind == .backwardInput && activation == .relu, let prevOutput {
            // The common case written out: the general derivative is too large to inline here. The
            // same arithmetic as `activationDerivative16`, so the bits do not depend on the path.
            for r in 0..<rows {
                var v = 0
                while v < cols {
                    let lanes = min(16, cols - v)
                    let y = loadLanes(prevOutput + (row + r) * ld + col + v, lanes)
                    let derivative = SIMD16<Float>(repeating: 0).replacing(with: 1, where: y .> 0)
                    storeLanes(load16(src + r * lds + v) * derivative, dst + r * ldd + v, lanes)
                    v += 16
                }
            }
            return
        }
        for r in 0..<rows {
            var v = 0
            while v < cols {
                apply(load16(src + r * lds + v), dst + r * ldd + v, row + r, col + v, min(16, cols - v))
                v += 16
            }
        }
    }

}

/// A matrix operand: element (i, j) at base[i * rowStride + j * colStride]. Transposed operands are
/// views with swapped strides; packing absorbs the difference.
struct MatrixView {
    var base: UnsafePointer<Float>
    var rowStride: Int
    var colStride: Int

    @inline(__always)
    subscript(i: Int, j: Int) -> Float { base[i * rowStride + j * colStride] }
}

/// The B operand of a product.
enum BOperand {
    /// A row-major or transposed matrix, packed into micro panels.
    case matrix(MatrixView)
    /// A weight in panels (`WeightPanels`) read as B(p, j) = weight[j, p] (p an input, j an output
    /// feature): its panels are micro panels already and are read in place.
    case weightPanels(UnsafePointer<Float>, inFeatures: Int)
    /// A weight in panels read as B(p, j) = weight[p, j] (p an output feature, j an input): packed
    /// through 16 x 16 transposes.
    case weightPanelsTransposed(UnsafePointer<Float>, inFeatures: Int)
    /// A row-major matrix whose column j is the view's column map[j], packed into micro panels.
    case gatheredColumns(MatrixView, UnsafePointer<Int32>)
}

/// Where C goes.
enum COperand {
    /// Row-major with row stride ldc.
    case matrix(UnsafeMutablePointer<Float>, ldc: Int)
    /// A weight gradient in panels, C(i, j) = gradient[j, i] (i an input, j an output feature).
    case weightPanels(UnsafeMutablePointer<Float>, inFeatures: Int)

    /// The block of C whose first element is (row, col), and its row stride. A block never straddles a
    /// panel: its columns start at a multiple of nr, which divides the panel width.
    @inline(__always)
    func block(row: Int, col: Int) -> (UnsafeMutablePointer<Float>, Int) {
        switch self {
        case .matrix(let c, let ldc):
            return (c + row * ldc + col, ldc)
        case .weightPanels(let c, let inFeatures):
            return (c + WeightPanels.offset(output: col, input: row, inFeatures: inFeatures), weightPanelWidth)
        }
    }
}

typealias Microkernel = (
    Int, UnsafePointer<Float>, Int, Int, UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>, Int, Bool
) -> Void

/// The block of C a part computes: a range of whole row blocks or of whole column blocks.
struct OutputShare {
    var rows: Range<Int>
    var cols: Range<Int>
    var splitsColumns: Bool

    /// - columnsAreOutputFeatures: C's columns are a layer's output features; they are then split in
    ///   whole weight panels, as `outputFeatureShare` says (every register block's nr divides the panel
    ///   width).
    /// - preferColumns: split columns whenever `splitsByOutputFeature` allows (a weight gradient, whose
    ///   columns are the features its part owns).
    init(m: Int, n: Int, tile: MatmulTile, part: Int, parts: Int, columnsAreOutputFeatures: Bool = false, preferColumns: Bool = false) {
        let rowBlocks = (m + tile.mr - 1) / tile.mr
        let colBlocks = columnsAreOutputFeatures ? WeightPanels.panels(outFeatures: n) : (n + tile.nr - 1) / tile.nr
        // Each part packs all of the operand along the unsplit dimension: with a column split that is
        // A (m x k), with a row split B (k x n). Split columns when B is the larger and there are
        // enough column blocks, or when there are too few row blocks.
        splitsColumns =
            (preferColumns && columnsAreOutputFeatures && splitsByOutputFeature(outFeatures: n, parts: parts))
            || (n > m && colBlocks >= parts) || (rowBlocks < parts && colBlocks > rowBlocks)
        if splitsColumns {
            rows = part >= 0 && part < parts ? 0..<m : 0..<0
            cols = columnsAreOutputFeatures
                ? outputFeatureShare(outFeatures: n, part: part, parts: parts)
                : partRange(count: n, granule: tile.nr, part: part, parts: parts)
        } else {
            rows = partRange(count: m, granule: tile.mr, part: part, parts: parts)
            cols = 0..<n
        }
    }
}

/// C[m,n] = A[m,k] B[k,n] for this part's share of C, finished by `epilogue`. Blocked as in BLIS:
/// column blocks of nc, k passes of kc (B micro panels stay in L1), row blocks of mc, then mr x nr
/// register blocks. B is packed with zero padding, unless it is a weight in panels: those are micro
/// panels already (zero padded past the last feature) and are read in place, 128-byte rows one after
/// the other. (A row-major weight read in place was slower: at n = 128 its rows are 512 bytes apart,
/// the panel maps onto a few L1 sets and misses L1.) A is read in place, row-major or transposed (the
/// micro kernel takes both), because at these shapes packing it cost as much as a fifth of the product;
/// only a ragged last row block is packed, zero padded, so that nothing past A's end is read.
func matmul(
    m: Int, n: Int, k: Int, a: MatrixView, b: BOperand, c: COperand,
    epilogue: MatmulEpilogue, tile requested: MatmulTile, workspace: UnsafeMutablePointer<Float>, share: OutputShare
) {
    var plain = PlainProduct()
    blockedProduct(
        m: m, n: n, k: k, a: a, b: b, c: c, epilogue: epilogue, tile: requested, workspace: workspace, share: share, panels: &plain)
}

/// `matmul` for the live-first weight gradient (raw stores, B packed from a matrix, one k pass; returns
/// whether it applied, and the caller sums the columns itself when it did not): while B's micro
/// panels are packed, the part that owns C's first row sums each column of B (in the order p = 0..<k,
/// from +0, as a bias gradient is summed) into `sums` and sets `live[j] = 1` for the columns that are
/// not all zero; and 16 columns of a register block whose B is all zero (+0 or -0) get +0 stores
/// instead of products. That is the value the product gives: each chain starts at +0 and adds
/// a*(±0), which is ±0 for finite a, and +0 + -0 is +0. The caller guarantees A is finite (a layer's
/// input batch).
func matmulSkippingZeroColumns(
    m: Int, n: Int, k: Int, a: MatrixView, b: BOperand, c: COperand, tile requested: MatmulTile,
    workspace: UnsafeMutablePointer<Float>, share: OutputShare, sums: UnsafeMutablePointer<Float>?, live: UnsafeMutablePointer<Float>
) -> Bool {
    var skipper = ZeroColumnSkipper(sums: sums, live: live)
    // One pass over k only: the watch sees each column's whole depth when its panel is packed.
    switch b {
    case .matrix, .gatheredColumns: skipper.applies = min(requested.normalized.kc, max(k, 1)) >= k
    case .weightPanels, .weightPanelsTransposed: skipper.applies = false
    }
    blockedProduct(
        m: m, n: n, k: k, a: a, b: b, c: c, epilogue: .raw, tile: requested, workspace: workspace, share: share, panels: &skipper)
    return skipper.applies
}

/// What a product does with each packed micro panel of B beyond multiplying it: nothing for a plain
/// product (`PlainProduct`, whose calls compile away), or the live-first weight gradient's column sums
/// and zero skipping (`ZeroColumnSkipper`).
protocol PackedPanelWatch {
    /// Whether the watch acts in this product; false compiles the product without it.
    var applies: Bool { get }
    /// Called after B's micro panel at `jr` (of this pass's column block starting at `jc`) is packed.
    mutating func packed(
        panel: UnsafeMutablePointer<Float>, jr: Int, jc: Int, cols: Int, kb: Int, nr: Int, firstRowPart: Bool)
    /// The 16-column halves of the register block at `jr` whose B is all zero (bit h: half h).
    func zeroHalves(jr: Int, cols: Int, nr: Int) -> UInt64
}

struct PlainProduct: PackedPanelWatch {
    @inline(__always) var applies: Bool { false }
    @inline(__always) mutating func packed(
        panel: UnsafeMutablePointer<Float>, jr: Int, jc: Int, cols: Int, kb: Int, nr: Int, firstRowPart: Bool
    ) {}
    @inline(__always) func zeroHalves(jr: Int, cols: Int, nr: Int) -> UInt64 { 0 }
}

struct ZeroColumnSkipper: PackedPanelWatch {
    let sums: UnsafeMutablePointer<Float>?
    let live: UnsafeMutablePointer<Float>
    var applies = true
    /// Bit (block * halvesPerBlock + half) set: that half of micro panel `block` of B is all zero.
    var zeroHalfBits: UInt64 = 0

    init(sums: UnsafeMutablePointer<Float>?, live: UnsafeMutablePointer<Float>) {
        self.sums = sums
        self.live = live
    }

    @inline(__always)
    mutating func packed(
        panel packed: UnsafeMutablePointer<Float>, jr: Int, jc: Int, cols: Int, kb: Int, nr: Int, firstRowPart: Bool
    ) {
        let halvesPerBlock = nr / 16
        let block = jr / nr
        if jr == 0 { zeroHalfBits = 0 }
        for half in 0..<halvesPerBlock {
            let panel = packed + half * 16
            var sum = SIMD16<Float>()
            var nonzero = SIMDMask<SIMD16<Int32>>(repeating: false)
            for p in 0..<kb {
                let row = load16(panel + p * nr)
                sum += row
                nonzero = nonzero .| (row .!= 0)
            }
            if !any(nonzero) && (block + 1) * halvesPerBlock <= 64 {
                zeroHalfBits |= 1 << UInt64(block * halvesPerBlock + half)
            }
            let first = jc + jr + half * 16
            if firstRowPart && first < jc + jr + cols {
                for lane in 0..<min(16, jc + jr + cols - first) {
                    sums?[first + lane] = sum[lane]
                    if nonzero[lane] { live[first + lane] = 1 }
                }
            }
        }
    }

    @inline(__always)
    func zeroHalves(jr: Int, cols: Int, nr: Int) -> UInt64 {
        let halvesPerBlock = nr / 16
        guard cols == nr && (jr / nr + 1) * halvesPerBlock <= 64 else { return 0 }
        return (zeroHalfBits >> UInt64(jr / nr * halvesPerBlock)) & ((1 << UInt64(halvesPerBlock)) - 1)
    }
}

/// The loop nest of `matmul`, with `panels` watching each packed micro panel of B (specialized for
/// each kind of watch, so the plain product carries none of the live-first variant's work).
func blockedProduct<Watch: PackedPanelWatch>(
    m: Int, n: Int, k: Int, a: MatrixView, b: BOperand, c: COperand,
    epilogue: MatmulEpilogue, tile requested: MatmulTile, workspace: UnsafeMutablePointer<Float>,
    share: OutputShare, panels: inout Watch
) {
    let tile = requested.normalized
    let mr = tile.mr, nr = tile.nr
    guard !share.rows.isEmpty, !share.cols.isEmpty else { return }
    let microkernel: Microkernel
    switch tile.registerBlock {
    case .r8x32: microkernel = microkernel8x32
    case .r6x16: microkernel = microkernel6x16
    case .r4x16: microkernel = microkernel4x16
    }
    let mc = min(tile.mc, roundUp(max(m, 1), to: mr))
    let nc = min(tile.nc, roundUp(max(n, 1), to: nr))
    let kc = min(tile.kc, max(k, 1))
    let packedA = workspace
    let packedB = workspace + mr * kc
    let edge = packedB + kc * nc
    // In place, A's block (r, p) is at base + r * aRowStride + p * aDepthStride from its first element.
    let aInPlace = a.colStride == 1 || a.rowStride == 1
    let aRowStride = a.colStride == 1 ? a.rowStride : 1
    let aDepthStride = a.colStride == 1 ? 1 : a.colStride
    let finishes = epilogue.kind != .raw
    let halvesPerBlock = nr / 16
    let watching = panels.applies
    let firstRowPart = share.rows.lowerBound == 0

    var jc = share.cols.lowerBound
    while jc < share.cols.upperBound {
        let nb = min(nc, share.cols.upperBound - jc)
        var pc = 0
        repeat {
            let kb = min(kc, k - pc)
            let finishing = pc + kb >= k
            let pass = finishing ? epilogue : MatmulEpilogue.raw
            var jr = 0
            while jr < nb {
                let cols = min(nr, nb - jr)
                switch b {
                case .matrix(let view):
                    packB(view, rows: pc, count: kb, cols: jc + jr, width: cols, nr: nr, into: packedB + jr * kb)
                case .gatheredColumns(let view, let map):
                    packBGathered(view, map, rows: pc, count: kb, cols: jc + jr, width: cols, nr: nr, into: packedB + jr * kb)
                case .weightPanels:
                    break
                case .weightPanelsTransposed(let weight, let inFeatures):
                    packWeightTransposed(
                        weight, inFeatures: inFeatures, rows: pc, count: kb, cols: jc + jr, width: cols, nr: nr, into: packedB + jr * kb)
                }
                if watching {
                    panels.packed(panel: packedB + jr * kb, jr: jr, jc: jc, cols: cols, kb: kb, nr: nr, firstRowPart: firstRowPart)
                }
                jr += nr
            }
            var ic = share.rows.lowerBound
            while ic < share.rows.upperBound {
                let mb = min(mc, share.rows.upperBound - ic)
                var ir = 0
                while ir < mb {
                    let rows = min(mr, mb - ir)
                    let row = ic + ir
                    let aBlock: UnsafePointer<Float>
                    let blockRowStride: Int, blockDepthStride: Int
                    if aInPlace && rows == mr {
                        aBlock = a.base + row * a.rowStride + pc * a.colStride
                        blockRowStride = aRowStride
                        blockDepthStride = aDepthStride
                    } else {
                        packA(a, rows: row, height: rows, cols: pc, count: kb, mr: mr, into: packedA)
                        aBlock = UnsafePointer(packedA)
                        blockRowStride = 1
                        blockDepthStride = mr
                    }
                    var jr = 0
                    while jr < nb {
                        let cols = min(nr, nb - jr)
                        let col = jc + jr
                        var bPanel = UnsafePointer(packedB + jr * kb)
                        var ldb = nr
                        if case .weightPanels(let weight, let inFeatures) = b {
                            bPanel = weight + WeightPanels.offset(output: col, input: pc, inFeatures: inFeatures)
                            ldb = weightPanelWidth
                        }
                        let (cBlock, ldc) = c.block(row: row, col: col)
                        let zero = watching ? panels.zeroHalves(jr: jr, cols: cols, nr: nr) : 0
                        if rows == mr && cols == nr && zero != 0 {
                            // Whole zero halves get +0; a block of two halves with one zero runs the
                            // other through the 16-wide kernel.
                            for half in 0..<halvesPerBlock where zero & (1 << UInt64(half)) != 0 {
                                for r in 0..<mr { store16(SIMD16<Float>(), cBlock + r * ldc + half * 16) }
                            }
                            if halvesPerBlock == 2 && zero != 3 {
                                let live = zero == 1 ? 16 : 0
                                microkernel8x16(kb, aBlock, blockRowStride, blockDepthStride, bPanel + live, ldb, cBlock + live, ldc, false)
                            }
                        } else if rows == mr && cols == nr {
                            microkernel(kb, aBlock, blockRowStride, blockDepthStride, bPanel, ldb, cBlock, ldc, pc > 0)
                            if finishing && finishes {
                                pass.finish(cBlock, ldc, cBlock, ldc, rows: mr, cols: nr, row: row, col: col)
                            }
                        } else {
                            // Ragged block: run the full register block on a scratch tile, then finish
                            // only the elements that exist.
                            if pc > 0 {
                                for r in 0..<rows {
                                    for j in 0..<cols { edge[r * nr + j] = cBlock[r * ldc + j] }
                                }
                            }
                            microkernel(kb, aBlock, blockRowStride, blockDepthStride, bPanel, ldb, edge, nr, pc > 0)
                            pass.finish(edge, nr, cBlock, ldc, rows: rows, cols: cols, row: row, col: col)
                        }
                        jr += nr
                    }
                    ir += mr
                }
                ic += mc
            }
            pc += kb
        } while pc < k
        jc += nc
    }
}

/// Packs rows [rows, rows+height) x columns [cols, cols+count) of A (height <= mr) into one micro panel
/// of mr rows, element (r, p) at p * mr + r; rows past the end are zeros.
private func packA(
    _ a: MatrixView, rows: Int, height: Int, cols: Int, count: Int, mr: Int, into panel: UnsafeMutablePointer<Float>
) {
    let valid = min(mr, height)
    if a.colStride == 1 {
        // Rows contiguous: read each row once, scatter into its lane of the panel.
        for r in 0..<valid {
            let src = a.base + (rows + r) * a.rowStride + cols
            for p in 0..<count { panel[p * mr + r] = src[p] }
        }
    } else {
        for p in 0..<count {
            for r in 0..<valid { panel[p * mr + r] = a[rows + r, cols + p] }
        }
    }
    if valid < mr {
        for p in 0..<count {
            for r in valid..<mr { panel[p * mr + r] = 0 }
        }
    }
}

/// packB for `BOperand.gatheredColumns`: column j of the panel is the view's column map[cols + j].
private func packBGathered(
    _ b: MatrixView, _ map: UnsafePointer<Int32>, rows: Int, count: Int, cols: Int, width: Int, nr: Int,
    into dst: UnsafeMutablePointer<Float>
) {
    for p in 0..<count {
        let src = b.base + (rows + p) * b.rowStride
        for j in 0..<width { dst[p * nr + j] = src[Int(map[cols + j]) * b.colStride] }
        for j in width..<nr { dst[p * nr + j] = 0 }
    }
}

/// Packs rows [rows, rows+count) x columns [cols, cols+width) of B into one micro panel of nr
/// columns, element (p, j) at p * nr + j; columns past the end are zeros.
private func packB(
    _ b: MatrixView, rows: Int, count: Int, cols: Int, width: Int, nr: Int, into dst: UnsafeMutablePointer<Float>
) {
    if b.colStride == 1 && width == nr {
        // Rows contiguous and a full panel: whole vectors.
        for p in 0..<count {
            let src = b.base + (rows + p) * b.rowStride + cols
            var j = 0
            while j < nr {
                store16(load16(src + j), dst + p * nr + j)
                j += 16
            }
        }
    } else {
        for p in 0..<count {
            for j in 0..<width { dst[p * nr + j] = b[rows + p, cols + j] }
        }
    }
    if width < nr {
        for p in 0..<count {
            for j in width..<nr { dst[p * nr + j] = 0 }
        }
    }
}

/// Packs B(p, j) = weight[p, j] for p in [rows, rows+count) (output features) and j in [cols, cols+width)
/// (inputs) from a weight in panels into one micro panel of nr columns, element (p, j) at p * nr + j;
/// columns past the end are zeros. Within a panel 16 consecutive features of one input are contiguous,
/// so aligned 16 x 16 blocks go through a register transpose.
private func packWeightTransposed(
    _ weight: UnsafePointer<Float>, inFeatures: Int, rows: Int, count: Int, cols: Int, width: Int, nr: Int,
    into dst: UnsafeMutablePointer<Float>
) {
    var p = 0
    while p < count {
        let feature = rows + p
        if width == nr && nr % 16 == 0 && feature % 16 == 0 && p + 16 <= count {
            var j = 0
            while j < nr {
                let src = weight + WeightPanels.offset(output: feature, input: cols + j, inFeatures: inFeatures)
                transpose16x16(src, weightPanelWidth, dst + p * nr + j, nr)
                j += 16
            }
            p += 16
            continue
        }
        for j in 0..<width { dst[p * nr + j] = weight[WeightPanels.offset(output: feature, input: cols + j, inFeatures: inFeatures)] }
        for j in width..<nr { dst[p * nr + j] = 0 }
        p += 1
    }
}

/// dst[p * ldd + j] = src[j * lds + p] for p, j in 0..<16. Four rounds of unzipping pairs of rows (the
/// even lanes of the pair, then the odd ones) rotate each element's 8-bit (row, column) index right by
/// one bit per round; after four the row and column have swapped. Each unzip is one two-source permute
/// where the vector unit has them (AVX-512: 64 vpermt2ps a block instead of 256 scalar stores).
@inline(__always)
func transpose16x16(_ src: UnsafePointer<Float>, _ lds: Int, _ dst: UnsafeMutablePointer<Float>, _ ldd: Int) {
    var r0 = load16(src), r1 = load16(src + lds), r2 = load16(src + 2 * lds), r3 = load16(src + 3 * lds)
    var r4 = load16(src + 4 * lds), r5 = load16(src + 5 * lds), r6 = load16(src + 6 * lds), r7 = load16(src + 7 * lds)
    var r8 = load16(src + 8 * lds), r9 = load16(src + 9 * lds), r10 = load16(src + 10 * lds)
    var r11 = load16(src + 11 * lds), r12 = load16(src + 12 * lds), r13 = load16(src + 13 * lds)
    var r14 = load16(src + 14 * lds), r15 = load16(src + 15 * lds)
    for _ in 0..<4 {
        let (n0, n8) = unzip(r0, r1)
        let (n1, n9) = unzip(r2, r3)
        let (n2, n10) = unzip(r4, r5)
        let (n3, n11) = unzip(r6, r7)
        let (n4, n12) = unzip(r8, r9)
        let (n5, n13) = unzip(r10, r11)
        let (n6, n14) = unzip(r12, r13)
        let (n7, n15) = unzip(r14, r15)
        (r0, r1, r2, r3, r4, r5, r6, r7) = (n0, n1, n2, n3, n4, n5, n6, n7)
        (r8, r9, r10, r11, r12, r13, r14, r15) = (n8, n9, n10, n11, n12, n13, n14, n15)
    }
    store16(r0, dst)
    store16(r1, dst + ldd)
    store16(r2, dst + 2 * ldd)
    store16(r3, dst + 3 * ldd)
    store16(r4, dst + 4 * ldd)
    store16(r5, dst + 5 * ldd)
    store16(r6, dst + 6 * ldd)
    store16(r7, dst + 7 * ldd)
    store16(r8, dst + 8 * ldd)
    store16(r9, dst + 9 * ldd)
    store16(r10, dst + 10 * ldd)
    store16(r11, dst + 11 * ldd)
    store16(r12, dst + 12 * ldd)
    store16(r13, dst + 13 * ldd)
    store16(r14, dst + 14 * ldd)
    store16(r15, dst + 15 * ldd)
}

/// The even lanes of a ++ b, then the odd ones.
@inline(__always)
private func unzip(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> (SIMD16<Float>, SIMD16<Float>) {
    let both = SIMD32<Float>(lowHalf: a, highHalf: b)
    return (both.evenHalf, both.oddHalf)
}

// MARK: - The layer kernels
//
// Weights, their gradients and moments are in panels of 32 output features (`WeightPanels`).

public func linearForward(
    _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
    _ y: UnsafeMutablePointer<Float>, _ preact: UnsafeMutablePointer<Float>?,
    _ m: Int, _ n: Int, _ k: Int, _ activation: ActivationCode, _ negativeSlope: Float,
    _ tile: MatmulTile, _ workspace: UnsafeMutablePointer<Float>, _ part: Int, _ parts: Int, _ order: FeatureOrder?
) {
    let epilogue = MatmulEpilogue(
        kind: .forward, activation: activation, slope: negativeSlope, bias: bias, preact: preact, ld: n)
    let share = OutputShare(m: m, n: n, tile: tile.normalized, part: part, parts: parts, columnsAreOutputFeatures: true)
    // y = x wᵀ, the weight's panels read in place as B.
    matmul(
        m: m, n: n, k: k,
        a: MatrixView(base: x, rowStride: k, colStride: 1),
        b: .weightPanels(w, inFeatures: k),
        c: .matrix(y, ldc: n), epilogue: epilogue, tile: tile, workspace: workspace, share: share)
    // The product came out in the stored order: this part's columns go to their places in the model's
    // order, which are among its own columns (the order maps each part's share onto itself), so no
    // other part reads or writes them.
    guard let order, !share.rows.isEmpty else { return }
    for r in share.rows {
        storedToModelOrder(y + r * n, share.cols, order.modelFeature, workspace)
        if let preact { storedToModelOrder(preact + r * n, share.cols, order.modelFeature, workspace) }
    }
}

/// row[modelFeature[s]] = (the row as it was)[s] for s in cols; `scratch` holds cols.count floats.
@inline(__always)
func storedToModelOrder(
    _ row: UnsafeMutablePointer<Float>, _ cols: Range<Int>, _ modelFeature: UnsafePointer<Int32>, _ scratch: UnsafeMutablePointer<Float>
) {
    let first = cols.lowerBound
    var i = 0
    while i + 16 <= cols.count {
        store16(load16(row + first + i), scratch + i)
        i += 16
    }
    while i < cols.count {
        scratch[i] = row[first + i]
        i += 1
    }
    for s in cols { row[Int(modelFeature[s])] = scratch[s - first] }
}

public func linearBackwardInput(
    _ dy: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
    _ m: Int, _ n: Int, _ k: Int, _ prevActivation: ActivationCode, _ negativeSlope: Float,
    _ prevOutput: UnsafePointer<Float>?, _ prevPreact: UnsafePointer<Float>?,
    _ tile: MatmulTile, _ workspace: UnsafeMutablePointer<Float>, _ part: Int, _ parts: Int
) {
    var epilogue = MatmulEpilogue.raw
    if prevActivation != .identity {
        let needsPreact = prevActivation.derivativeNeedsPreactivation
        guard let source = needsPreact ? prevPreact : prevOutput else {
            preconditionFailure("linearBackwardInput needs the previous layer's \(needsPreact ? "preactivation" : "output") for \(prevActivation)")
        }
        epilogue = MatmulEpilogue(
            kind: .backwardInput, activation: prevActivation, slope: negativeSlope,
            prevOutput: needsPreact ? nil : source, prevPreact: needsPreact ? source : nil, ld: k)
    }
    // dx[m,k] = dy[m,n] w: B(p, j) = w[p, j].
    matmul(
        m: m, n: k, k: n,
        a: MatrixView(base: dy, rowStride: n, colStride: 1),
        b: .weightPanelsTransposed(w, inFeatures: k),
        c: .matrix(dx, ldc: k), epilogue: epilogue, tile: tile, workspace: workspace,
        share: OutputShare(m: m, n: k, tile: tile.normalized, part: part, parts: parts))
}

public func linearBackwardWeights(
    _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>,
    _ db: UnsafeMutablePointer<Float>?, _ m: Int, _ n: Int, _ k: Int,
    _ tile: MatmulTile, _ workspace: UnsafeMutablePointer<Float>, _ part: Int, _ parts: Int, _ order: FeatureOrder?
) {
    // C(i, j) = (x^T dy)(i, j) = dw[j, i], written into the gradient's panels; A(i, p) = x[p, i]. The
    // parts split the output features (C's columns) when there are enough, as the forward product does.
    // With a feature order, C's column s is dy's column modelFeature[s], gathered as B is packed.
    let share = OutputShare(
        m: k, n: n, tile: tile.normalized, part: part, parts: parts, columnsAreOutputFeatures: true, preferColumns: true)
    let view = MatrixView(base: dy, rowStride: n, colStride: 1)
    let a = MatrixView(base: x, rowStride: 1, colStride: k)
    var summed = false
    if let order {
        summed = matmulSkippingZeroColumns(
            m: k, n: n, k: m, a: a, b: .gatheredColumns(view, order.modelFeature), c: .weightPanels(dw, inFeatures: k),
            tile: tile, workspace: workspace, share: share, sums: db, live: order.live)
    } else {
        matmul(
            m: k, n: n, k: m, a: a, b: .matrix(view), c: .weightPanels(dw, inFeatures: k), epilogue: .raw, tile: tile,
            workspace: workspace, share: share)
    }
    // The bias gradient of this part's columns, by the part that owns the first row of C (every part
    // when columns are split), summed in the fixed order 0..<m. (With a feature order the product
    // did it from the packed columns when it could, in the same order.)
    guard !share.rows.isEmpty, share.rows.lowerBound == 0, !summed else { return }
    let cols = share.cols
    if let order {
        // The product took more than one pass: the same sums over gathered columns, one at a time.
        for j in cols {
            let column = Int(order.modelFeature[j])
            var sum: Float = 0
            var live = false
            for i in 0..<m {
                let value = dy[i * n + column]
                sum += value
                if value != 0 { live = true }
            }
            db?[j] = sum
            if live { order.live[j] = 1 }
        }
        return
    }
    guard let db else { return }
    var j = cols.lowerBound
    while j + 16 <= cols.upperBound {
        var sum = SIMD16<Float>()
        for i in 0..<m { sum += load16(dy + i * n + j) }
        store16(sum, db + j)
        j += 16
    }
    while j < cols.upperBound {
        var sum: Float = 0
        for i in 0..<m { sum += dy[i * n + j] }
        db[j] = sum
        j += 1
    }
}
