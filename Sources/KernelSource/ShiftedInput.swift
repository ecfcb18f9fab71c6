import KernelInterface

// The first linear layer with its input's normalization shift absorbed (the plan's `shiftedInput`):
// the gathered batch holds u = pixel * scale, which is exactly +0 for a zero pixel, instead of
// x = u + shift, and the layer computes
//
//     y[b, f]  = act(sum_i u[b, i] w[f, i]  +  shift * sum_i w[f, i]  +  bias[f])
//     dw[f, i] = sum_b u[b, i] dy[b, f]  +  shift * sum_b dy[b, f]
//
// Each sum over u is one fused multiply-add chain in the order of its index, from +0, as the blocked
// product computes it, and the shift's term is one more fused multiply-add at the end. A term whose u
// (or, in the gradient, whose dy) is ±0 adds ±0 to a chain that is never -0 (it starts at +0, and a sum
// that cancels exactly is +0), which changes nothing. So loops over the nonzero pixels only give the
// same bits as the blocked product over all of them, and a batch takes whichever is faster: the
// pixel loops when at most half of its pixels are nonzero (MNIST: about one in five), the blocked
// product otherwise. That holds for finite weights and gradients (0 * inf is NaN, not +0), so a
// column sum that is not finite (a sum is finite only when every term is) sends the call to the
// blocked product.

private let lowLaneBits = SIMD16<UInt32>(
    1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7,
    1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12, 1 << 13, 1 << 14, 1 << 15)

/// Bit i % 64 of word i / 64 of `words` set when row[i] is not zero, for i in 0..<k; returns how many.
/// (The lanes' bits are disjoint, so their sum is their union.)
@inline(__always)
private func nonzeroMask(_ row: UnsafePointer<Float>, _ k: Int, _ words: UnsafeMutableRawPointer) -> Int {
    let highLaneBits = lowLaneBits &<< 16
    let none = SIMD16<UInt32>()
    var nonzero = 0
    var word = 0
    while (word + 1) * 64 <= k {
        let p = row + word * 64
        let low = none.replacing(with: lowLaneBits, where: load16(p) .!= 0)
            | none.replacing(with: highLaneBits, where: load16(p + 16) .!= 0)
        let high = none.replacing(with: lowLaneBits, where: load16(p + 32) .!= 0)
            | none.replacing(with: highLaneBits, where: load16(p + 48) .!= 0)
        let bits = UInt64(low.wrappedSum()) | UInt64(high.wrappedSum()) << 32
        nonzero += bits.nonzeroBitCount
        words.storeBytes(of: bits, toByteOffset: word * 8, as: UInt64.self)
        word += 1
    }
    if word * 64 < k {
        var bits: UInt64 = 0
        for i in (word * 64)..<k where row[i] != 0 { bits |= 1 << UInt64(i - word * 64) }
        nonzero += bits.nonzeroBitCount
        words.storeBytes(of: bits, toByteOffset: word * 8, as: UInt64.self)
    }
    return nonzero
}

/// For the rows [rows, rows + count) of u (count <= 64) and the inputs `inputs`: a 64-bit mask per input
/// i, bit b set when u[rows + b, i] is not zero, as two UInt32 arrays (low and high halves) of
/// `stride` entries at `masks`, indexed by i - first, where first = inputs.lowerBound rounded down to a
/// multiple of 16. Returns how many bits are set for the inputs in `inputs`.
private func nonzeroColumnMasks(
    _ u: UnsafePointer<Float>, _ k: Int, rows: Int, count: Int, _ inputs: Range<Int>, _ masks: UnsafeMutableRawPointer, stride: Int
) -> Int {
    let first = inputs.lowerBound / 16 * 16
    var nonzero = 0
    var group = first
    while group < inputs.upperBound {
        let lanes = min(16, k - group)
        let lowWords = masks + (group - first) * 4, highWords = masks + (stride + group - first) * 4
        if lanes == 16 {
            var low = SIMD16<Int32>(), high = SIMD16<Int32>()
            // Row b's bit, kept in a vector and doubled row by row (a splat of 1 << b per row was slow).
            var bit = SIMD16<Int32>(repeating: 1)
            let base = u + rows * k + group
            for b in 0..<min(count, 32) {
                low = low.replacing(with: low | bit, where: load16(base + b * k) .!= 0)
                bit &+= bit
            }
            bit = SIMD16<Int32>(repeating: 1)
            for b in min(count, 32)..<count {
                high = high.replacing(with: high | bit, where: load16(base + b * k) .!= 0)
                bit &+= bit
            }
            storeMask16(low, lowWords)
            storeMask16(high, highWords)
        } else {
            // The last, ragged group (a partial load here crashes the compiler).
            for lane in 0..<lanes {
                var bits: UInt64 = 0
                for b in 0..<count where u[(rows + b) * k + group + lane] != 0 { bits |= 1 << UInt64(b) }
                lowWords.storeBytes(of: UInt32(truncatingIfNeeded: bits), toByteOffset: lane * 4, as: UInt32.self)
                highWords.storeBytes(of: UInt32(truncatingIfNeeded: bits >> 32), toByteOffset: lane * 4, as: UInt32.self)
            }
        }
        for lane in 0..<lanes where inputs.contains(group + lane) {
            nonzero += lowWords.load(fromByteOffset: lane * 4, as: UInt32.self).nonzeroBitCount
                + highWords.load(fromByteOffset: lane * 4, as: UInt32.self).nonzeroBitCount
        }
        group += 16
    }
    return nonzero
}

/// The 16 lanes of v at p (4-byte aligned).
@inline(__always)
private func storeMask16(_ v: SIMD16<Int32>, _ p: UnsafeMutableRawPointer) {
    UnsafeMutableRawPointer(p).storeBytes(of: unsafeBitCast(v, to: SIMD16<Float>.self), as: SIMD16<Float>.self)
}

/// Whether sums[i] is finite for every i in `range`; a sum is finite only if all of its terms are.
@inline(__always)
private func allFinite(_ sums: UnsafePointer<Float>, _ range: Range<Int>) -> Bool {
    for i in range where !sums[i].isFinite { return false }
    return true
}

@inline(__always)
private func maskWord(_ words: UnsafeRawPointer, _ word: Int) -> UInt64 {
    words.loadUnaligned(fromByteOffset: word * 8, as: UInt64.self)
}

/// sums[c] = w's column c (output feature c) summed over its k inputs, in order, from +0, for the
/// features `cols` (whose start is a panel's). Whole panels are summed; sums has room for them.
private func weightColumnSums(_ w: UnsafePointer<Float>, _ k: Int, _ cols: Range<Int>, _ sums: UnsafeMutablePointer<Float>) {
    var c = cols.lowerBound
    while c < cols.upperBound {
        let panel = w + (c / weightPanelWidth) * k * weightPanelWidth
        var s0 = SIMD16<Float>(), s1 = SIMD16<Float>()
        for i in 0..<k {
            s0 += load16(panel + i * weightPanelWidth)
            s1 += load16(panel + i * weightPanelWidth + 16)
        }
        store16(s0, sums + c)
        store16(s1, sums + c + 16)
        c += weightPanelWidth
    }
}

/// y = act(u wᵀ + shift * (w's column sums) + bias) for this part's share (as `linearForward`), with
/// the shift absorbed as the comment at the top of this file says. `skipZeros` false always takes
/// the blocked product (the same bits; for tests and timing). The workspace holds
/// `MatmulTile.workspaceFloats` plus `shiftedForwardScratchFloats` floats.
public func linearForwardShifted(
    _ u: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
    _ y: UnsafeMutablePointer<Float>, _ preact: UnsafeMutablePointer<Float>?,
    _ m: Int, _ n: Int, _ k: Int, _ activation: ActivationCode, _ negativeSlope: Float,
    _ tile: MatmulTile, _ workspace: UnsafeMutablePointer<Float>, _ part: Int, _ parts: Int, _ order: FeatureOrder?,
    _ shift: Float, _ skipZeros: Bool
) {
    let share = OutputShare(m: m, n: n, tile: tile.normalized, part: part, parts: parts, columnsAreOutputFeatures: true)
    guard !share.rows.isEmpty, !share.cols.isEmpty else { return }
    let sums = workspace + MatmulTile.workspaceFloats(tile, m: m, n: n, k: k)
    let masks = UnsafeMutableRawPointer(sums + roundUp(max(n, 1), to: weightPanelWidth))
    weightColumnSums(w, k, share.cols, sums)
    let epilogue = MatmulEpilogue(
        kind: .forward, activation: activation, slope: negativeSlope, bias: bias, preact: preact, ld: n,
        shift: shift, columnSums: UnsafePointer(sums))
    let words = shiftedInputMaskWords(k)
    var nonzero = 0
    if skipZeros {
        for r in share.rows {
            nonzero += nonzeroMask(u + r * k, k, masks + (r - share.rows.lowerBound) * words * 8)
        }
    }
    if skipZeros && 2 * nonzero <= share.rows.count * k && allFinite(sums, share.cols) {
        forwardOverNonzeroPixels(u, w, y, n, k, share, UnsafeRawPointer(masks), words, epilogue)
    } else {
        matmul(
            m: m, n: n, k: k,
            a: MatrixView(base: u, rowStride: k, colStride: 1),
            b: .weightPanels(w, inFeatures: k),
            c: .matrix(y, ldc: n), epilogue: epilogue, tile: tile, workspace: workspace, share: share)
    }
    guard let order else { return }
    for r in share.rows {
        storedToModelOrder(y + r * n, share.cols, order.modelFeature, workspace)
        if let preact { storedToModelOrder(preact + r * n, share.cols, order.modelFeature, workspace) }
    }
}

/// The forward product's share as one multiply-add chain per output over the nonzero pixels of its
/// row, two weight panels (64 features) at a time, finished by the epilogue.
private func forwardOverNonzeroPixels(
    _ u: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ k: Int,
    _ share: OutputShare, _ masks: UnsafeRawPointer, _ words: Int, _ epilogue: MatmulEpilogue
) {
    var c0 = share.cols.lowerBound
    while c0 < share.cols.upperBound {
        let panel0 = w + (c0 / weightPanelWidth) * k * weightPanelWidth
        let twoPanels = c0 + weightPanelWidth < share.cols.upperBound
        let panel1 = panel0 + k * weightPanelWidth
        let end = share.cols.upperBound
        @inline(__always)
        func finish(_ r: Int, _ a0: SIMD16<Float>, _ a1: SIMD16<Float>, _ a2: SIMD16<Float>, _ a3: SIMD16<Float>) {
            let out = y + r * n
            epilogue.apply(a0, out + c0, r, c0, min(16, end - c0))
            if c0 + 16 < end { epilogue.apply(a1, out + c0 + 16, r, c0 + 16, min(16, end - c0 - 16)) }
            if twoPanels {
                epilogue.apply(a2, out + c0 + 32, r, c0 + 32, min(16, end - c0 - 32))
                if c0 + 48 < end { epilogue.apply(a3, out + c0 + 48, r, c0 + 48, min(16, end - c0 - 48)) }
            }
        }
        @inline(__always)
        func mask(_ r: Int, _ word: Int) -> UInt64 { maskWord(masks + (r - share.rows.lowerBound) * words * 8, word) }
        // Two rows at a time, over the pixels nonzero in either: the other row's term there is
        // 0 * w, ±0 (w is finite here), which leaves its chain as it is. Each weight row is loaded
        // once for both rows, and eight chains run instead of four.
        var r = share.rows.lowerBound
        while r + 1 < share.rows.upperBound {
            let rowA = u + r * k, rowB = rowA + k
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
            var b0 = SIMD16<Float>(), b1 = SIMD16<Float>(), b2 = SIMD16<Float>(), b3 = SIMD16<Float>()
            for word in 0..<words {
                var bits = mask(r, word) | mask(r + 1, word)
                while bits != 0 {
                    let i = word * 64 + bits.trailingZeroBitCount
                    bits &= bits &- 1
                    let x = SIMD16<Float>(repeating: rowA[i]), z = SIMD16<Float>(repeating: rowB[i])
                    let w0 = load16(panel0 + i * weightPanelWidth), w1 = load16(panel0 + i * weightPanelWidth + 16)
                    a0 = a0.addingProduct(x, w0)
                    b0 = b0.addingProduct(z, w0)
                    a1 = a1.addingProduct(x, w1)
                    b1 = b1.addingProduct(z, w1)
                    if twoPanels {
                        let w2 = load16(panel1 + i * weightPanelWidth), w3 = load16(panel1 + i * weightPanelWidth + 16)
                        a2 = a2.addingProduct(x, w2)
                        b2 = b2.addingProduct(z, w2)
                        a3 = a3.addingProduct(x, w3)
                        b3 = b3.addingProduct(z, w3)
                    }
                }
            }
            finish(r, a0, a1, a2, a3)
            finish(r + 1, b0, b1, b2, b3)
            r += 2
        }
        if r < share.rows.upperBound {
            let row = u + r * k
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
            for word in 0..<words {
                var bits = mask(r, word)
                while bits != 0 {
                    let i = word * 64 + bits.trailingZeroBitCount
                    bits &= bits &- 1
                    let x = SIMD16<Float>(repeating: row[i])
                    a0 = a0.addingProduct(x, load16(panel0 + i * weightPanelWidth))
                    a1 = a1.addingProduct(x, load16(panel0 + i * weightPanelWidth + 16))
                    if twoPanels {
                        a2 = a2.addingProduct(x, load16(panel1 + i * weightPanelWidth))
                        a3 = a3.addingProduct(x, load16(panel1 + i * weightPanelWidth + 16))
                    }
                }
            }
            finish(r, a0, a1, a2, a3)
        }
        c0 += 2 * weightPanelWidth
    }
}

/// dw = (uᵀ dy)ᵀ + shift * (dy's column sums) for this part's share (as `linearBackwardWeights`),
/// with the shift absorbed as the comment at the top of this file says; db, the order's live flags and
/// the zero stores of idle features as there. The workspace holds `MatmulTile.workspaceFloats` (of
/// the product's shape (k, n, m)) plus `shiftedWeightGradientScratchFloats` floats.
public func linearBackwardWeightsShifted(
    _ u: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>,
    _ db: UnsafeMutablePointer<Float>?, _ m: Int, _ n: Int, _ k: Int,
    _ tile: MatmulTile, _ workspace: UnsafeMutablePointer<Float>, _ part: Int, _ parts: Int, _ order: FeatureOrder?,
    _ shift: Float, _ skipZeros: Bool
) {
    let share = OutputShare(
        m: k, n: n, tile: tile.normalized, part: part, parts: parts, columnsAreOutputFeatures: true, preferColumns: true)
    guard !share.rows.isEmpty, !share.cols.isEmpty else { return }
    let cols = share.cols
    let width = roundUp(max(cols.count, 1), to: 16)
    let sums = workspace + MatmulTile.workspaceFloats(tile, m: k, n: n, k: m)
    let columns = sums + width
    let masks = UnsafeMutableRawPointer(columns + m * width)
    let stride = roundUp(max(k, 1), to: 16)
    // This part's columns of dy, in the stored order, zero padded to whole vectors, and their sums in
    // the order b = 0..<m from +0 (the bias gradient's order).
    for v in Swift.stride(from: 0, to: width, by: 16) { store16(SIMD16<Float>(), sums + v) }
    for b in 0..<m {
        let source = dy + b * n
        let target = columns + b * width
        if let order {
            for j in 0..<cols.count { target[j] = source[Int(order.modelFeature[cols.lowerBound + j])] }
        } else {
            for j in 0..<cols.count { target[j] = source[cols.lowerBound + j] }
        }
        for j in cols.count..<width { target[j] = 0 }
        for v in Swift.stride(from: 0, to: width, by: 16) { store16(load16(sums + v) + load16(target + v), sums + v) }
    }
    var nonzero = 0
    let blocks = (m + 63) / 64
    if skipZeros {
        for block in 0..<blocks {
            nonzero += nonzeroColumnMasks(
                u, k, rows: block * 64, count: min(64, m - block * 64), share.rows, masks + block * 2 * stride * 4, stride: stride)
        }
    }
    if skipZeros && 2 * nonzero <= m * share.rows.count && allFinite(sums, 0..<cols.count) {
        if share.rows.lowerBound == 0 {
            for j in 0..<cols.count {
                db?[cols.lowerBound + j] = sums[j]
                if let order {
                    for b in 0..<m where columns[b * width + j] != 0 {
                        order.live[cols.lowerBound + j] = 1
                        break
                    }
                }
            }
        }
        weightGradientOverNonzeroPixels(u, dw, k, m, share, columns, width, sums, shift, UnsafeRawPointer(masks), stride)
        return
    }
    linearBackwardWeights(u, dy, dw, db, m, n, k, tile, workspace, part, parts, order)
    // The shift's term, last.
    let shiftVector = SIMD16<Float>(repeating: shift)
    for i in share.rows {
        var v = 0
        while v < cols.count {
            let p = dw + WeightPanels.offset(output: cols.lowerBound + v, input: i, inFeatures: k)
            let lanes = min(16, cols.count - v)
            storeLanes(loadLanes(UnsafePointer(p), lanes).addingProduct(shiftVector, load16(sums + v)), p, lanes)
            v += 16
        }
    }
}

/// The weight gradient's share, input by input: one multiply-add chain per element over the batch
/// rows (in order) whose pixel is nonzero, kept in registers for four vectors of features at a time,
/// then the shift's term, stored once. Vectors whose dy is zero in every row are left out of the
/// chains (their terms are all ±0).
private func weightGradientOverNonzeroPixels(
    _ u: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>, _ k: Int, _ m: Int, _ share: OutputShare,
    _ columns: UnsafePointer<Float>, _ width: Int, _ sums: UnsafePointer<Float>, _ shift: Float,
    _ masks: UnsafeRawPointer, _ stride: Int
) {
    let cols = share.cols
    let first = share.rows.lowerBound / 16 * 16
    let blocks = (m + 63) / 64
    let shiftVector = SIMD16<Float>(repeating: shift)
    var v0 = 0
    while v0 < width {
        // Four vectors (64 features), or what is left; the ones whose dy is zero in every row stay out.
        var live = (false, false, false, false)
        for b in 0..<m {
            let row = columns + b * width + v0
            if !live.0 && any(load16(row) .!= 0) { live.0 = true }
            if v0 + 16 < width && !live.1 && any(load16(row + 16) .!= 0) { live.1 = true }
            if v0 + 32 < width && !live.2 && any(load16(row + 32) .!= 0) { live.2 = true }
            if v0 + 48 < width && !live.3 && any(load16(row + 48) .!= 0) { live.3 = true }
        }
        let s0 = load16(sums + v0)
        let s1 = v0 + 16 < width ? load16(sums + v0 + 16) : SIMD16<Float>()
        let s2 = v0 + 32 < width ? load16(sums + v0 + 32) : SIMD16<Float>()
        let s3 = v0 + 48 < width ? load16(sums + v0 + 48) : SIMD16<Float>()
        /// The chains' results plus the shift's term, stored into input i's 64 (or fewer) features.
        @inline(__always)
        func store(_ i: Int, _ a0: SIMD16<Float>, _ a1: SIMD16<Float>, _ a2: SIMD16<Float>, _ a3: SIMD16<Float>) {
            let panel = dw + WeightPanels.offset(output: cols.lowerBound + v0, input: i, inFeatures: k)
            storeLanes(a0.addingProduct(shiftVector, s0), panel, min(16, cols.count - v0))
            if v0 + 16 < cols.count {
                storeLanes(a1.addingProduct(shiftVector, s1), panel + 16, min(16, cols.count - v0 - 16))
            }
            if v0 + 32 < cols.count {
                let next = dw + WeightPanels.offset(output: cols.lowerBound + v0 + 32, input: i, inFeatures: k)
                storeLanes(a2.addingProduct(shiftVector, s2), next, min(16, cols.count - v0 - 32))
                if v0 + 48 < cols.count {
                    storeLanes(a3.addingProduct(shiftVector, s3), next + 16, min(16, cols.count - v0 - 48))
                }
            }
        }
        @inline(__always)
        func rows(_ i: Int, _ block: Int) -> UInt64 {
            let maskOffset = (block * 2 * stride + i - first) * 4
            return UInt64(masks.load(fromByteOffset: maskOffset, as: UInt32.self))
                | UInt64(masks.load(fromByteOffset: maskOffset + stride * 4, as: UInt32.self)) << 32
        }
        // Two inputs at a time, over the rows where either is nonzero: the other's term there is
        // 0 * dy, ±0 (dy is finite here), which leaves its chain as it is. Eight chains instead of
        // four, and each row of dy loaded once for both.
        var i = share.rows.lowerBound
        while i + 1 < share.rows.upperBound {
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
            var c0 = SIMD16<Float>(), c1 = SIMD16<Float>(), c2 = SIMD16<Float>(), c3 = SIMD16<Float>()
            for block in 0..<blocks {
                var bits = rows(i, block) | rows(i + 1, block)
                while bits != 0 {
                    let b = block * 64 + bits.trailingZeroBitCount
                    bits &= bits &- 1
                    let x = SIMD16<Float>(repeating: u[b * k + i]), y = SIMD16<Float>(repeating: u[b * k + i + 1])
                    let row = columns + b * width + v0
                    if live.0 {
                        let d = load16(row)
                        a0 = a0.addingProduct(x, d)
                        c0 = c0.addingProduct(y, d)
                    }
                    if live.1 {
                        let d = load16(row + 16)
                        a1 = a1.addingProduct(x, d)
                        c1 = c1.addingProduct(y, d)
                    }
                    if live.2 {
                        let d = load16(row + 32)
                        a2 = a2.addingProduct(x, d)
                        c2 = c2.addingProduct(y, d)
                    }
                    if live.3 {
                        let d = load16(row + 48)
                        a3 = a3.addingProduct(x, d)
                        c3 = c3.addingProduct(y, d)
                    }
                }
            }
            store(i, a0, a1, a2, a3)
            store(i + 1, c0, c1, c2, c3)
            i += 2
        }
        if i < share.rows.upperBound {
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
            for block in 0..<blocks {
                var bits = rows(i, block)
                while bits != 0 {
                    let b = block * 64 + bits.trailingZeroBitCount
                    bits &= bits &- 1
                    let x = SIMD16<Float>(repeating: u[b * k + i])
                    let row = columns + b * width + v0
                    if live.0 { a0 = a0.addingProduct(x, load16(row)) }
                    if live.1 { a1 = a1.addingProduct(x, load16(row + 16)) }
                    if live.2 { a2 = a2.addingProduct(x, load16(row + 32)) }
                    if live.3 { a3 = a3.addingProduct(x, load16(row + 48)) }
                }
            }
            store(i, a0, a1, a2, a3)
        }
        v0 += 64
    }
}
