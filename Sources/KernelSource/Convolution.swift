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
    for oc in first..<max(first, end) {
        let group = oc / groupOut
        if let db {
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
        var i = 0
        while i < k {
            let block = min(4, k - i)
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
            for n in 0..<rows {
                let d = dy + n * g.outputFloats + oc * p
                let c0 = columns + n * columnFloats + group * k * p + i * p
                let c1 = c0 + (block > 1 ? p : 0), c2 = c0 + (block > 2 ? 2 * p : 0), c3 = c0 + (block > 3 ? 3 * p : 0)
                var position = 0
                while position + 16 <= p {
                    let v = load16(d + position)
                    a0 = a0.addingProduct(v, load16(c0 + position))
                    a1 = a1.addingProduct(v, load16(c1 + position))
                    a2 = a2.addingProduct(v, load16(c2 + position))
                    a3 = a3.addingProduct(v, load16(c3 + position))
                    position += 16
                }
                if position < p {
                    let lanes = p - position
                    let v = loadPartial16(d + position, lanes)
                    a0 = a0.addingProduct(v, loadPartial16(c0 + position, lanes))
                    a1 = a1.addingProduct(v, loadPartial16(c1 + position, lanes))
                    a2 = a2.addingProduct(v, loadPartial16(c2 + position, lanes))
                    a3 = a3.addingProduct(v, loadPartial16(c3 + position, lanes))
                }
            }
            let row = dw + oc * k + i
            row[0] = treeSum16(a0)
            if block > 1 { row[1] = treeSum16(a1) }
            if block > 2 { row[2] = treeSum16(a2) }
            if block > 3 { row[3] = treeSum16(a3) }
            i += block
        }
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
