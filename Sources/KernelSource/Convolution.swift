import KernelInterface

// 2-D convolution as PyTorch's nn.Conv2d computes it, over NCHW tensors: each sample's input is
// unfolded into column matrices (im2col, [patchSize, outPixels] per group) and multiplied by the
// group's weight rows in registers, eight output channels by sixteen positions at a time. Every output
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
    im2colRows(x, col, g, first: 0, end: g.patchSize)
}

/// Rows [first, end) of `im2col`, written from `col` on.
@inline(__always)
func im2colRows(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, _ g: ConvGeometry, first: Int, end: Int) {
    let h = g.inHeight, w = g.inWidth, oh = g.outHeight, ow = g.outWidth, p = g.outPixels
    let kernelArea = g.kernelHeight * g.kernelWidth
    var row = col
    for index in first..<max(first, end) {
        let c = index / kernelArea, ki = (index % kernelArea) / g.kernelWidth, kj = index % g.kernelWidth
        let plane = x + c * h * w
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

/// y[r, p] = act(sum over i of w[r, i] * col[i, p] + bias[r]) for `rows` (1...8) weight rows starting
/// at `w` (row stride k), positions [0, p), sixteen at a time; `pre` (if not nil) gets the sums plus
/// bias. Each sum runs over i ascending with fused multiply-adds.
@inline(__always)
func columnProduct(
    _ w: UnsafePointer<Float>, _ rows: Int, _ col: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
    _ k: Int, _ p: Int, _ bias: UnsafePointer<Float>?, _ pre: UnsafeMutablePointer<Float>?,
    _ code: ActivationCode, _ slope: Float
) {
    // Missing rows read row 0's weights and are not stored.
    @inline(__always) func row(_ r: Int) -> UnsafePointer<Float> { w + (rows > r ? r * k : 0) }
    let w0 = row(0), w1 = row(1), w2 = row(2), w3 = row(3), w4 = row(4), w5 = row(5), w6 = row(6), w7 = row(7)
    var position = 0
    while position < p {
        let lanes = min(16, p - position)
        var a0 = SIMD16<Float>(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0
        var source = col + position
        if lanes == 16 {
            for i in 0..<k {
                let c = load16(source)
                a0 = a0.addingProduct(c, w0[i])
                a1 = a1.addingProduct(c, w1[i])
                a2 = a2.addingProduct(c, w2[i])
                a3 = a3.addingProduct(c, w3[i])
                a4 = a4.addingProduct(c, w4[i])
                a5 = a5.addingProduct(c, w5[i])
                a6 = a6.addingProduct(c, w6[i])
                a7 = a7.addingProduct(c, w7[i])
                source += p
            }
        } else {
            for i in 0..<k {
                let c = loadPartial16(source, lanes)
                a0 = a0.addingProduct(c, w0[i])
                a1 = a1.addingProduct(c, w1[i])
                a2 = a2.addingProduct(c, w2[i])
                a3 = a3.addingProduct(c, w3[i])
                a4 = a4.addingProduct(c, w4[i])
                a5 = a5.addingProduct(c, w5[i])
                a6 = a6.addingProduct(c, w6[i])
                a7 = a7.addingProduct(c, w7[i])
                source += p
            }
        }
        for r in 0..<rows {
            var z: SIMD16<Float>
            switch r {
            case 0: z = a0
            case 1: z = a1
            case 2: z = a2
            case 3: z = a3
            case 4: z = a4
            case 5: z = a5
            case 6: z = a6
            default: z = a7
            }
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
                let rows = min(8, groupEnd - oc)
                let at = n * g.outputFloats + oc * p
                columnProduct(w + oc * k, rows, col, y + at, k, p, bias.map { $0 + oc }, pre.map { $0 + at }, code, slope)
                oc += rows
            }
        }
    }
}

public func conv2dBackwardWeights(
    _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>,
    _ db: UnsafeMutablePointer<Float>?, _ scratch: UnsafeMutablePointer<Float>, _ rows: Int, _ g: ConvGeometry,
    _ first: Int, _ end: Int
) {
    let k = g.patchSize, p = g.outPixels, groupOut = g.groupOutChannels
    let first = max(0, first), end = min(k, end)
    // db goes with patch row 0, so exactly one part computes it.
    if let db, first == 0 {
        for oc in 0..<g.outChannels {
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
    guard end > first else { return }
    // Sixteen lanes per (output channel, patch row), summed over the samples in order and the positions
    // sixteen at a time, then a fixed tree: the same order for any split of the patch rows. Each
    // sample's column rows are unfolded here into scratch that stays in cache, not kept from the forward.
    let count = end - first
    let accumulators = scratch, col = scratch + g.outChannels * count * 16
    accumulators.update(repeating: 0, count: g.outChannels * count * 16)
    for n in 0..<rows {
        for group in 0..<g.groups {
            im2colRows(x + n * g.inputFloats + group * g.groupInChannels * g.inPixels, col, g, first: first, end: end)
            var oc = group * groupOut
            let groupEnd = oc + groupOut
            while oc < groupEnd {
                let channels = min(4, groupEnd - oc)
                var i = 0
                while i < count {
                    let block = min(4, count - i)
                    @inline(__always) func at(_ r: Int, _ j: Int) -> UnsafeMutablePointer<Float> {
                        accumulators + ((oc + min(r, channels - 1)) * count + i + min(j, block - 1)) * 16
                    }
                    var s00 = load16(at(0, 0)), s01 = load16(at(0, 1)), s02 = load16(at(0, 2)), s03 = load16(at(0, 3))
                    var s10 = load16(at(1, 0)), s11 = load16(at(1, 1)), s12 = load16(at(1, 2)), s13 = load16(at(1, 3))
                    var s20 = load16(at(2, 0)), s21 = load16(at(2, 1)), s22 = load16(at(2, 2)), s23 = load16(at(2, 3))
                    var s30 = load16(at(3, 0)), s31 = load16(at(3, 1)), s32 = load16(at(3, 2)), s33 = load16(at(3, 3))
                    let d0 = dy + n * g.outputFloats + oc * p
                    let d1 = d0 + (channels > 1 ? p : 0), d2 = d0 + (channels > 2 ? 2 * p : 0), d3 = d0 + (channels > 3 ? 3 * p : 0)
                    let c0 = UnsafePointer(col + i * p)
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
                    // Rows and columns past the block repeat the last real one; storing them in reverse
                    // order leaves the real value last.
                    store16(s33, at(3, 3)); store16(s32, at(3, 2)); store16(s31, at(3, 1)); store16(s30, at(3, 0))
                    store16(s23, at(2, 3)); store16(s22, at(2, 2)); store16(s21, at(2, 1)); store16(s20, at(2, 0))
                    store16(s13, at(1, 3)); store16(s12, at(1, 2)); store16(s11, at(1, 1)); store16(s10, at(1, 0))
                    store16(s03, at(0, 3)); store16(s02, at(0, 2)); store16(s01, at(0, 1)); store16(s00, at(0, 0))
                    i += block
                }
                oc += channels
            }
        }
    }
    for oc in 0..<g.outChannels {
        for i in 0..<count { dw[oc * k + first + i] = treeSum16(load16(accumulators + (oc * count + i) * 16)) }
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
            // scratch[i, position] = sum over the group's output channels of w[oc, i] * dy[n, oc, position],
            // eight patch rows by sixteen positions in registers.
            var i = 0
            while i < k {
                let block = min(8, k - i)
                var position = 0
                while position < p {
                    let lanes = min(16, p - position)
                    var a0 = SIMD16<Float>(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0
                    for oc in (group * groupOut)..<((group + 1) * groupOut) {
                        let v = loadLanes(dy + n * g.outputFloats + oc * p + position, lanes)
                        // Rows past the block read row i's weight and are not stored.
                        let row = w + oc * k + i
                        a0 = a0.addingProduct(v, row[0])
                        a1 = a1.addingProduct(v, row[block > 1 ? 1 : 0])
                        a2 = a2.addingProduct(v, row[block > 2 ? 2 : 0])
                        a3 = a3.addingProduct(v, row[block > 3 ? 3 : 0])
                        a4 = a4.addingProduct(v, row[block > 4 ? 4 : 0])
                        a5 = a5.addingProduct(v, row[block > 5 ? 5 : 0])
                        a6 = a6.addingProduct(v, row[block > 6 ? 6 : 0])
                        a7 = a7.addingProduct(v, row[block > 7 ? 7 : 0])
                    }
                    let out = scratch + i * p + position
                    storeLanes(a0, out, lanes)
                    if block > 1 { storeLanes(a1, out + p, lanes) }
                    if block > 2 { storeLanes(a2, out + 2 * p, lanes) }
                    if block > 3 { storeLanes(a3, out + 3 * p, lanes) }
                    if block > 4 { storeLanes(a4, out + 4 * p, lanes) }
                    if block > 5 { storeLanes(a5, out + 5 * p, lanes) }
                    if block > 6 { storeLanes(a6, out + 6 * p, lanes) }
                    if block > 7 { storeLanes(a7, out + 7 * p, lanes) }
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
