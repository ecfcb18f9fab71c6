import KernelInterface

// Direct 2-D convolution for stride 1 and dilation 1, without im2col. Each sample's input is copied
// into kernelWidth row-shifted copies of its zero-padded planes, each row cut to the output width:
// copy (c, j) row r holds padded[c][r][j ..< j + outWidth]. Output position p = oy * outWidth + ox
// then reads tap (c, kh, kw) at copy (c, kw), offset p + kh * outWidth: a uniform shift, so each tap
// is one unaligned vector load per sixteen positions, multiplied by broadcast weights in a register
// block of output channels x vectors. Every output sums its products over the patch index (c, kh,
// kw) ascending with fused multiply-adds from zero, as the im2col kernel does: the same bits.
//
// The input gradient of a stride-1 convolution is the same product applied to dy, padded by
// (kernel - 1 - pad), with the weights flipped and the channels swapped per group.

/// Row-shifted copies of `channels` planes (height x width) at x: copy (c, j) row r, outWidth floats,
/// holds x[c][r - padTop][ox + j - padLeft] or 0 outside the planes, for r in 0..<paddedHeight.
/// Writes may run up to 15 floats past a row (the next row overwrites them, the last into the
/// buffer's 16 spare floats); reads never pass `xEnd`.
@inline(__always)
func shiftedRowCopies(
    _ x: UnsafePointer<Float>, _ xEnd: UnsafePointer<Float>, channels: Int, height: Int, width: Int, padTop: Int,
    padLeft: Int, paddedHeight: Int, kernelWidth: Int, outWidth: Int, _ rows: UnsafeMutablePointer<Float>
) {
    let zero = SIMD16<Float>()
    var out = rows
    for c in 0..<channels {
        let plane = x + c * height * width
        for j in 0..<kernelWidth {
            let shift = j - padLeft
            let first = min(max(-shift, 0), outWidth), end = max(min(width - shift, outWidth), first)
            for r in 0..<paddedHeight {
                let ih = r - padTop
                if ih < 0 || ih >= height || end == first {
                    var o = 0
                    while o < outWidth {
                        store16(zero, out + o)
                        o += 16
                    }
                } else {
                    for o in 0..<first { out[o] = 0 }
                    let source = plane + ih * width + shift
                    var o = first
                    while o < end {
                        if source + o + 16 <= xEnd {
                            store16(load16(source + o), out + o)
                        } else {
                            for i in o..<end { out[i] = source[i] }
                        }
                        o += 16
                    }
                    for o in end..<outWidth { out[o] = 0 }
                }
                out += outWidth
            }
        }
    }
}

/// The shape of one shifted-row product: `channels` input channels of `kernelHeight x kernelWidth`
/// taps over copies of `paddedHeight` rows of `outWidth` floats, `pixels` output positions.
struct ShiftedRowShape {
    var channels: Int
    var kernelHeight: Int
    var kernelWidth: Int
    var paddedHeight: Int
    var outWidth: Int
    var pixels: Int
    var patch: Int { channels * kernelHeight * kernelWidth }
}

/// Output channels [0, R) (weights at w, row stride patch) by vectors [j0, j0 + V) of positions
/// (vectors past the last repeat it); R and V are constants at every call, so the unused
/// accumulators fold away.
@inline(__always)
func shiftedRowBlock(
    _ R: Int, _ V: Int, _ j0: Int, _ rows: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ s: ShiftedRowShape,
    _ y: UnsafeMutablePointer<Float>, _ pre: UnsafeMutablePointer<Float>?, _ bias: UnsafePointer<Float>?,
    _ code: ActivationCode, _ slope: Float
) {
    let k = s.patch, p = s.pixels, last = (p + 15) / 16 - 1
    @inline(__always) func row(_ r: Int) -> UnsafePointer<Float> { w + (R > r ? r : 0) * k }
    let w0 = row(0), w1 = row(1), w2 = row(2), w3 = row(3), w4 = row(4), w5 = row(5), w6 = row(6), w7 = row(7)
    let q0 = min(j0, last) * 16, q1 = min(j0 + 1, last) * 16, q2 = min(j0 + 2, last) * 16, q3 = min(j0 + 3, last) * 16
    var a00 = SIMD16<Float>(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00
    var a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00
    var a40 = a00, a41 = a00, a42 = a00, a43 = a00, a50 = a00, a51 = a00, a52 = a00, a53 = a00
    var a60 = a00, a61 = a00, a62 = a00, a63 = a00, a70 = a00, a71 = a00, a72 = a00, a73 = a00
    let copyFloats = s.paddedHeight * s.outWidth
    var i = 0
    for c in 0..<s.channels {
        for kh in 0..<s.kernelHeight {
            var source = rows + (c * s.kernelWidth * s.paddedHeight + kh) * s.outWidth
            for _ in 0..<s.kernelWidth {
                let x0 = load16(source + q0)
                let x1 = V > 1 ? load16(source + q1) : x0
                let x2 = V > 2 ? load16(source + q2) : x0
                let x3 = V > 3 ? load16(source + q3) : x0
                @inline(__always) func fma4(_ a0: inout SIMD16<Float>, _ a1: inout SIMD16<Float>, _ a2: inout SIMD16<Float>, _ a3: inout SIMD16<Float>, _ weight: Float) {
                    a0 = a0.addingProduct(x0, weight)
                    if V > 1 { a1 = a1.addingProduct(x1, weight) }
                    if V > 2 { a2 = a2.addingProduct(x2, weight) }
                    if V > 3 { a3 = a3.addingProduct(x3, weight) }
                }
                fma4(&a00, &a01, &a02, &a03, w0[i])
                if R > 1 { fma4(&a10, &a11, &a12, &a13, w1[i]) }
                if R > 2 { fma4(&a20, &a21, &a22, &a23, w2[i]) }
                if R > 3 { fma4(&a30, &a31, &a32, &a33, w3[i]) }
                if R > 4 { fma4(&a40, &a41, &a42, &a43, w4[i]) }
                if R > 5 { fma4(&a50, &a51, &a52, &a53, w5[i]) }
                if R > 6 { fma4(&a60, &a61, &a62, &a63, w6[i]) }
                if R > 7 { fma4(&a70, &a71, &a72, &a73, w7[i]) }
                i += 1
                source += copyFloats
            }
        }
    }
    @inline(__always) func put(_ z: SIMD16<Float>, _ r: Int, _ q: Int) {
        var z = z
        if let bias { z = z + SIMD16(repeating: bias[r]) }
        let lanes = min(16, p - q)
        if let pre { storeLanes(z, pre + r * p + q, lanes) }
        storeLanes(activate16(z, code, slope), y + r * p + q, lanes)
    }
    @inline(__always) func put4(_ r: Int, _ a0: SIMD16<Float>, _ a1: SIMD16<Float>, _ a2: SIMD16<Float>, _ a3: SIMD16<Float>) {
        put(a0, r, q0)
        if V > 1 { put(a1, r, q1) }
        if V > 2 { put(a2, r, q2) }
        if V > 3 { put(a3, r, q3) }
    }
    put4(0, a00, a01, a02, a03)
    if R > 1 { put4(1, a10, a11, a12, a13) }
    if R > 2 { put4(2, a20, a21, a22, a23) }
    if R > 3 { put4(3, a30, a31, a32, a33) }
    if R > 4 { put4(4, a40, a41, a42, a43) }
    if R > 5 { put4(5, a50, a51, a52, a53) }
    if R > 6 { put4(6, a60, a61, a62, a63) }
    if R > 7 { put4(7, a70, a71, a72, a73) }
}

/// Every vector of positions for output channels [0, R), in blocks of at most `maxV` vectors.
@inline(__always)
func shiftedRowChannels(
    _ R: Int, _ maxV: Int, _ rows: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ s: ShiftedRowShape,
    _ y: UnsafeMutablePointer<Float>, _ pre: UnsafeMutablePointer<Float>?, _ bias: UnsafePointer<Float>?,
    _ code: ActivationCode, _ slope: Float
) {
    let vectors = (s.pixels + 15) / 16
    var j0 = 0
    while j0 < vectors {
        let v = min(maxV, vectors - j0)
        switch v {
        case 1: shiftedRowBlock(R, 1, j0, rows, w, s, y, pre, bias, code, slope)
        case 2: shiftedRowBlock(R, 2, j0, rows, w, s, y, pre, bias, code, slope)
        case 3: shiftedRowBlock(R, 3, j0, rows, w, s, y, pre, bias, code, slope)
        default: shiftedRowBlock(R, maxV > 3 ? 4 : 3, j0, rows, w, s, y, pre, bias, code, slope)
        }
        j0 += v
    }
}

/// y[oc, p] (outChannels channels, weights at w) from the row-shifted copies at `rows`, eight or six
/// channels at a time (fewer at the end).
func shiftedRowProduct(
    _ rows: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ outChannels: Int, _ s: ShiftedRowShape,
    _ y: UnsafeMutablePointer<Float>, _ pre: UnsafeMutablePointer<Float>?, _ bias: UnsafePointer<Float>?,
    _ code: ActivationCode, _ slope: Float
) {
    let k = s.patch, p = s.pixels
    var oc = 0
    while oc < outChannels {
        let left = outChannels - oc
        let r = left >= 8 ? 8 : left >= 6 ? 6 : left >= 4 ? 4 : left >= 2 ? 2 : 1
        let wr = w + oc * k, yr = y + oc * p, pr = pre.map { $0 + oc * p }, br = bias.map { $0 + oc }
        switch r {
        case 8: shiftedRowChannels(8, 3, rows, wr, s, yr, pr, br, code, slope)
        case 6: shiftedRowChannels(6, 4, rows, wr, s, yr, pr, br, code, slope)
        case 4: shiftedRowChannels(4, 4, rows, wr, s, yr, pr, br, code, slope)
        case 2: shiftedRowChannels(2, 4, rows, wr, s, yr, pr, br, code, slope)
        default: shiftedRowChannels(1, 4, rows, wr, s, yr, pr, br, code, slope)
        }
        oc += r
    }
}

/// Samples [first, end) of a stride-1, dilation-1 convolution, one group at a time through the
/// row-shifted copies in `scratch` (`geometry.shiftedRowFloats` floats).
@inline(__always)
func shiftedRowConvolution(
    _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>,
    _ pre: UnsafeMutablePointer<Float>?, _ scratch: UnsafeMutablePointer<Float>, _ g: ConvGeometry,
    _ code: ActivationCode, _ slope: Float, _ first: Int, _ end: Int
) {
    let groupIn = g.groupInChannels, groupOut = g.groupOutChannels, k = g.patchSize, p = g.outPixels
    let s = ShiftedRowShape(
        channels: groupIn, kernelHeight: g.kernelHeight, kernelWidth: g.kernelWidth,
        paddedHeight: g.outHeight + g.kernelHeight - 1, outWidth: g.outWidth, pixels: p)
    // The last partial vector reads up to 15 floats past the copies: finite values, never stored.
    (scratch + s.channels * s.kernelWidth * s.paddedHeight * s.outWidth).update(repeating: 0, count: 16)
    for n in first..<max(first, end) {
        let sample = x + n * g.inputFloats
        for group in 0..<g.groups {
            shiftedRowCopies(
                sample + group * groupIn * g.inPixels, sample + g.inputFloats, channels: groupIn, height: g.inHeight,
                width: g.inWidth, padTop: g.padTop, padLeft: g.padLeft, paddedHeight: s.paddedHeight,
                kernelWidth: g.kernelWidth, outWidth: g.outWidth, scratch)
            let oc = group * groupOut, at = n * g.outputFloats + oc * p
            shiftedRowProduct(scratch, w + oc * k, groupOut, s, y + at, pre.map { $0 + at }, bias.map { $0 + oc }, code, slope)
        }
    }
}

public func conv2dForwardDirect(
    _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>,
    _ pre: UnsafeMutablePointer<Float>?, _ scratch: UnsafeMutablePointer<Float>, _ g: ConvGeometry,
    _ code: ActivationCode, _ slope: Float, _ first: Int, _ end: Int
) {
    shiftedRowConvolution(x, w, bias, y, pre, scratch, g, code, slope, first, end)
}

public func conv2dBackwardInputDirect(
    _ dy: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
    _ scratch: UnsafeMutablePointer<Float>, _ g: ConvGeometry, _ first: Int, _ end: Int
) {
    // flipped[c][o][kh][kw] = w[group * groupOut + o][c - group * groupIn][kh'][kw'], kh' = kH - 1 - kh.
    let t = g.inputGradientGeometry, flipped = scratch
    let groupIn = g.groupInChannels, groupOut = g.groupOutChannels, kh = g.kernelHeight, kw = g.kernelWidth
    var target = flipped
    for c in 0..<g.inChannels {
        let group = c / groupIn, local = c % groupIn
        for o in 0..<groupOut {
            let source = w + ((group * groupOut + o) * groupIn + local) * kh * kw
            for i in 0..<kh {
                for j in 0..<kw { target[i * kw + j] = source[(kh - 1 - i) * kw + (kw - 1 - j)] }
            }
            target += kh * kw
        }
    }
    let rows = scratch + g.flippedWeightFloats
    shiftedRowConvolution(dy, flipped, nil, dx, nil, rows, t, .identity, 0, first, end)
}
