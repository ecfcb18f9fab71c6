import KernelInterface

// 2-D convolution as PyTorch's nn.Conv2d computes it, over NCHW tensors: each sample's input is
// unfolded into column matrices (im2col, [patchSize, outPixels] per group) and multiplied by the
// group's weight rows in registers, four output channels by sixteen positions at a time. Every output
// value sums its products in one fixed order (the patch index ascending), with fused multiply-adds, so
// the bits are the same for any split of the samples or channels and any kernel set.

/// Horizontal sum in a fixed tree (halves added), the same on every instruction set.
@inline(__always)
func treeSum16(_ v: SIMD16<Float>) -> Float {
    let s8 = v.lowHalf + v.highHalf
    let s4 = s8.lowHalf + s8.highHalf
    let s2 = s4.lowHalf + s4.highHalf
    return s2[0] + s2[1]
}

/// Unfolds one group of one sample: column (c, ki, kj) row, position (oh, ow) holds
/// x[c, oh * stride - pad + ki * dilation, ...] or 0 outside the input.
@inline(__always)
func im2col(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
    let h = g.inHeight, w = g.inWidth, oh = g.outHeight, ow = g.outWidth, p = g.outPixels
    var row = col
    for c in 0..<g.groupInChannels {
        let plane = x + c * h * w
        for ki in 0..<g.kernelHeight {
            for kj in 0..<g.kernelWidth {
                let dh = ki * g.dilationHeight - g.padTop, dw = kj * g.dilationWidth - g.padLeft
                for y in 0..<oh {
                    let ih = y * g.strideHeight + dh
                    let out = row + y * ow
                    guard ih >= 0 && ih < h else {
                        out.update(repeating: 0, count: ow)
                        continue
                    }
                    let source = plane + ih * w
                    if g.strideWidth == 1 {
                        // One contiguous run of the input row, zeros on either side of it.
                        let first = min(max(-dw, 0), ow), end = max(min(w - dw, ow), first)
                        if first > 0 { out.update(repeating: 0, count: first) }
                        if end > first { (out + first).update(from: source + first + dw, count: end - first) }
                        if end < ow { (out + end).update(repeating: 0, count: ow - end) }
                        continue
                    }
                    for xo in 0..<ow {
                        let iw = xo * g.strideWidth + dw
                        out[xo] = iw >= 0 && iw < w ? source[iw] : 0
                    }
                }
                row += p
            }
        }
    }
}

/// y[r, p] = sum over k of w[r, k] * col[k, p] for `rows` (1...4) weight rows starting at `w`
/// (row stride `k`), positions [0, p); returns nothing, writes `rows` output rows (stride p).
@inline(__always)
func columnProduct(
    _ w: UnsafePointer<Float>, _ rows: Int, _ col: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
    _ k: Int, _ p: Int, _ bias: UnsafePointer<Float>?, _ pre: UnsafeMutablePointer<Float>?,
    _ code: ActivationCode, _ slope: Float
) {
    // Missing rows read row 0's weights and are not stored.
    let w0 = w, w1 = w + (rows > 1 ? k : 0), w2 = w + (rows > 2 ? 2 * k : 0), w3 = w + (rows > 3 ? 3 * k : 0)
    var position = 0
    while position < p {
        let lanes = min(16, p - position)
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        var source = col + position
        if lanes == 16 {
            for i in 0..<k {
                let c = load16(source)
                a0 = a0.addingProduct(c, w0[i])
                a1 = a1.addingProduct(c, w1[i])
                a2 = a2.addingProduct(c, w2[i])
                a3 = a3.addingProduct(c, w3[i])
                source += p
            }
        } else {
            for i in 0..<k {
                let c = loadPartial16(source, lanes)
                a0 = a0.addingProduct(c, w0[i])
                a1 = a1.addingProduct(c, w1[i])
                a2 = a2.addingProduct(c, w2[i])
                a3 = a3.addingProduct(c, w3[i])
                source += p
            }
        }
        for r in 0..<rows {
            var z = r == 0 ? a0 : r == 1 ? a1 : r == 2 ? a2 : a3
            if let bias { z = z + SIMD16(repeating: bias[r]) }
            if let pre { storeLanes(z, pre + r * p + position, lanes) }
            storeLanes(activate16(z, code, slope), y + r * p + position, lanes)
        }
        position += 16
    }
}

public func conv2dForward(
    _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>,
    _ pre: UnsafeMutablePointer<Float>?, _ columns: UnsafeMutablePointer<Float>, _ columnStride: Int, _ g: ConvGeometry,
    _ code: ActivationCode, _ slope: Float, _ first: Int, _ end: Int
) {
    let k = g.patchSize, p = g.outPixels, groupOut = g.groupOutChannels
    for n in first..<max(first, end) {
        let sampleColumns = columns + n * columnStride
        for group in 0..<g.groups {
            let col = sampleColumns + group * k * p
            im2col(x + n * g.inputFloats + group * g.groupInChannels * g.inPixels, col, g)
            var oc = group * groupOut
            let groupEnd = oc + groupOut
            while oc < groupEnd {
                let rows = min(4, groupEnd - oc)
                let at = n * g.outputFloats + oc * p
                columnProduct(w + oc * k, rows, col, y + at, k, p, bias.map { $0 + oc }, pre.map { $0 + at }, code, slope)
                oc += rows
            }
        }
    }
}

public func conv2dBackwardWeights(
    _ columns: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>,
    _ db: UnsafeMutablePointer<Float>?, _ rows: Int, _ g: ConvGeometry, _ first: Int, _ end: Int
) {
    let k = g.patchSize, p = g.outPixels, groupOut = g.groupOutChannels, columnFloats = g.columnFloats
    if let db {
        for oc in first..<max(first, end) {
            var a = SIMD16<Float>()
            for n in 0..<rows {
                let d = dy + n * g.outputFloats + oc * p
                var position = 0
                while position < p {
                    a = a + loadLanes(d + position, min(16, p - position))
                    position += 16
                }
            }
            db[oc] = treeSum16(a)
        }
    }
    // Samples go in chunks whose columns fit in L2 (the chunk depends on the geometry alone), so each
    // chunk's columns come from memory once for every block of output channels. Within a chunk, blocks
    // of 4 output channels (of one group) x 4 patch rows: each of the 16 sums runs over the chunk's
    // samples and the positions in sixteen lanes, then a fixed tree, and is added to the sum of the
    // chunks before it. The order depends on nothing but the geometry and the batch.
    let chunk = max(1, (512 * 1024) / max(1, columnFloats * 4))
    var chunkStart = 0
    while chunkStart < rows {
    let chunkEnd = min(rows, chunkStart + chunk)
    var oc = first
    while oc < end {
        let group = oc / groupOut
        let channels = min(4, end - oc, (group + 1) * groupOut - oc)
        var i = 0
        while i < k {
            let block = min(4, k - i)
            var s00 = SIMD16<Float>(), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00
            var s20 = s00, s21 = s00, s22 = s00, s23 = s00, s30 = s00, s31 = s00, s32 = s00, s33 = s00
            for n in chunkStart..<chunkEnd {
                let d0 = dy + n * g.outputFloats + oc * p
                let d1 = d0 + (channels > 1 ? p : 0), d2 = d0 + (channels > 2 ? 2 * p : 0), d3 = d0 + (channels > 3 ? 3 * p : 0)
                let c0 = columns + n * columnFloats + group * k * p + i * p
                let c1 = c0 + (block > 1 ? p : 0), c2 = c0 + (block > 2 ? 2 * p : 0), c3 = c0 + (block > 3 ? 3 * p : 0)
                var position = 0
                while position < p {
                    let lanes = min(16, p - position)
                    let x0 = loadLanes(c0 + position, lanes), x1 = loadLanes(c1 + position, lanes)
                    let x2 = loadLanes(c2 + position, lanes), x3 = loadLanes(c3 + position, lanes)
                    let v0 = loadLanes(d0 + position, lanes)
                    s00 = s00.addingProduct(v0, x0)
                    s01 = s01.addingProduct(v0, x1)
                    s02 = s02.addingProduct(v0, x2)
                    s03 = s03.addingProduct(v0, x3)
                    let v1 = loadLanes(d1 + position, lanes)
                    s10 = s10.addingProduct(v1, x0)
                    s11 = s11.addingProduct(v1, x1)
                    s12 = s12.addingProduct(v1, x2)
                    s13 = s13.addingProduct(v1, x3)
                    let v2 = loadLanes(d2 + position, lanes)
                    s20 = s20.addingProduct(v2, x0)
                    s21 = s21.addingProduct(v2, x1)
                    s22 = s22.addingProduct(v2, x2)
                    s23 = s23.addingProduct(v2, x3)
                    let v3 = loadLanes(d3 + position, lanes)
                    s30 = s30.addingProduct(v3, x0)
                    s31 = s31.addingProduct(v3, x1)
                    s32 = s32.addingProduct(v3, x2)
                    s33 = s33.addingProduct(v3, x3)
                    position += 16
                }
            }
            @inline(__always) func store(_ r: Int, _ t0: SIMD16<Float>, _ t1: SIMD16<Float>, _ t2: SIMD16<Float>, _ t3: SIMD16<Float>) {
                guard r < channels else { return }
                let row = dw + (oc + r) * k + i
                // The first chunk writes (dw holds anything before), the later ones add.
                let adds = chunkStart > 0
                row[0] = adds ? row[0] + treeSum16(t0) : treeSum16(t0)
                if block > 1 { row[1] = adds ? row[1] + treeSum16(t1) : treeSum16(t1) }
                if block > 2 { row[2] = adds ? row[2] + treeSum16(t2) : treeSum16(t2) }
                if block > 3 { row[3] = adds ? row[3] + treeSum16(t3) : treeSum16(t3) }
            }
            store(0, s00, s01, s02, s03)
            store(1, s10, s11, s12, s13)
            store(2, s20, s21, s22, s23)
            store(3, s30, s31, s32, s33)
            i += block
        }
        oc += channels
    }
    chunkStart = chunkEnd
    }
}

public func conv2dBackwardInput(
    _ dy: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
    _ scratch: UnsafeMutablePointer<Float>, _ g: ConvGeometry, _ first: Int, _ end: Int
) {
    let k = g.patchSize, p = g.outPixels, groupOut = g.groupOutChannels
    let h = g.inHeight, width = g.inWidth, oh = g.outHeight, ow = g.outWidth
    for n in first..<max(first, end) {
        let sampleDx = dx + n * g.inputFloats
        sampleDx.update(repeating: 0, count: g.inputFloats)
        for group in 0..<g.groups {
            // scratch[i, position] = sum over the group's output channels of w[oc, i] * dy[n, oc, position].
            var i = 0
            while i < k {
                let block = min(4, k - i)
                var position = 0
                while position < p {
                    let lanes = min(16, p - position)
                    var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
                    for oc in (group * groupOut)..<((group + 1) * groupOut) {
                        let v = loadLanes(dy + n * g.outputFloats + oc * p + position, lanes)
                        let row = w + oc * k + i
                        a0 = a0.addingProduct(v, row[0])
                        a1 = a1.addingProduct(v, block > 1 ? row[1] : 0)
                        a2 = a2.addingProduct(v, block > 2 ? row[2] : 0)
                        a3 = a3.addingProduct(v, block > 3 ? row[3] : 0)
                    }
                    let out = scratch + i * p + position
                    storeLanes(a0, out, lanes)
                    if block > 1 { storeLanes(a1, out + p, lanes) }
                    if block > 2 { storeLanes(a2, out + 2 * p, lanes) }
                    if block > 3 { storeLanes(a3, out + 3 * p, lanes) }
                    position += 16
                }
                i += block
            }
            // col2im: every column value goes back to the input element it was copied from.
            var row = UnsafePointer(scratch)
            for c in 0..<g.groupInChannels {
                let plane = sampleDx + (group * g.groupInChannels + c) * h * width
                for ki in 0..<g.kernelHeight {
                    for kj in 0..<g.kernelWidth {
                        let dh = ki * g.dilationHeight - g.padTop, dw = kj * g.dilationWidth - g.padLeft
                        for y in 0..<oh {
                            let ih = y * g.strideHeight + dh
                            guard ih >= 0 && ih < h else { continue }
                            let target = plane + ih * width, source = row + y * ow
                            if g.strideWidth == 1 {
                                // One contiguous run, without per-element bounds.
                                let first = min(max(-dw, 0), ow), end = max(min(width - dw, ow), first)
                                for xo in first..<end { target[xo + dw] += source[xo] }
                                continue
                            }
                            for xo in 0..<ow {
                                let iw = xo * g.strideWidth + dw
                                if iw >= 0 && iw < width { target[iw] += source[xo] }
                            }
                        }
                        row += p
                    }
                }
            }
        }
    }
}
