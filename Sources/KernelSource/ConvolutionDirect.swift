import KernelInterface

// Direct 2-D convolution for stride 1 and dilation 1, without im2col. Each sample's input is copied
// into kernelWidth row-shifted copies of its zero-padded planes, each row cut to the output width:
// copy (c, j) row r holds padded[c][r][j ..< j + outWidth]. Output position p = oy * outWidth + ox
// then reads tap (c, kh, kw) at copy (c, kw), offset p + kh * outWidth: a uniform shift, so each tap
// is one unaligned vector load per sixteen positions, multiplied by broadcast weights in a register
// block of output channels x vectors. Every output sums its products over the patch index (c, kh,
// kw) ascending with fused multiply-adds from zero, as the im2col kernel does: the same bits.

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
                // Whole-vector stores, each free to run past the part it fills: what follows overwrites it.
                if ih < 0 || ih >= height || end == first {
                    var o = 0
                    while o < outWidth {
                        store16(zero, out + o)
                        o += 16
                    }
                } else {
                    var o = 0
                    while o < first {
                        store16(zero, out + o)
                        o += 16
                    }
                    let source = plane + ih * width + shift
                    o = first
                    while o < end {
                        if source + o + 16 <= xEnd {
                            store16(load16(source + o), out + o)
                        } else {
                            for i in o..<end { out[i] = source[i] }
                        }
                        o += 16
                    }
                    o = end
                    while o < outWidth {
                        store16(zero, out + o)
                        o += 16
                    }
                }
                out += outWidth
            }
        }
    }
}

/// The shape of one shifted-row product: `channels` input channels of `kernelHeight x kernelWidth`
/// taps over copies of `paddedHeight` rows of `outWidth` floats, `pixels` output positions.
/// `patch` is the weight rows' stride. With `continues` the sums start from the partial sums in y
/// (an earlier chunk of channels stored them there), else from zero; with `finishes` the bias and
/// activation are applied, else the partial sums are stored as they are.
struct ShiftedRowShape {
    var channels: Int
    var kernelHeight: Int
    var kernelWidth: Int
    var paddedHeight: Int
    var outWidth: Int
    var pixels: Int
    var patch: Int
    var continues: Bool
    var finishes: Bool
}

/// A count fixed at compile time: the register blocks are generic over these, so each block size is
/// its own specialization and its unused accumulators fold away.
protocol BlockCount { static var count: Int { get } }
enum One: BlockCount { static var count: Int { 1 } }
enum Two: BlockCount { static var count: Int { 2 } }
enum Three: BlockCount { static var count: Int { 3 } }
enum Four: BlockCount { static var count: Int { 4 } }
enum Six: BlockCount { static var count: Int { 6 } }
enum Eight: BlockCount { static var count: Int { 8 } }

/// a0...a3 += x0...x3 * weight, the first `vectors` of them.
@inline(__always)
func addProducts(
    _ vectors: Int, _ a0: inout SIMD16<Float>, _ a1: inout SIMD16<Float>, _ a2: inout SIMD16<Float>, _ a3: inout SIMD16<Float>,
    _ x0: SIMD16<Float>, _ x1: SIMD16<Float>, _ x2: SIMD16<Float>, _ x3: SIMD16<Float>, _ weight: Float
) {
    a0 = a0.addingProduct(x0, weight)
    if vectors > 1 { a1 = a1.addingProduct(x1, weight) }
    if vectors > 2 { a2 = a2.addingProduct(x2, weight) }
    if vectors > 3 { a3 = a3.addingProduct(x3, weight) }
}

/// Output channels [0, R.count) (weights at w, row stride patch) by vectors [j0, j0 + V.count) of
/// positions, all within the output (the last may be partial).
@inline(never)
func shiftedRowBlock<R: BlockCount, V: BlockCount>(
    _: R.Type, _: V.Type, _ j0: Int, _ rows: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ s: ShiftedRowShape,
    _ y: UnsafeMutablePointer<Float>, _ pre: UnsafeMutablePointer<Float>?, _ bias: UnsafePointer<Float>?,
    _ code: ActivationCode, _ slope: Float
) {
    let R = R.count, V = V.count
    let k = s.patch, p = s.pixels
    let w0 = w, w1 = w + (R > 1 ? k : 0), w2 = w + (R > 2 ? 2 * k : 0), w3 = w + (R > 3 ? 3 * k : 0)
    let w4 = w + (R > 4 ? 4 * k : 0), w5 = w + (R > 5 ? 5 * k : 0), w6 = w + (R > 6 ? 6 * k : 0), w7 = w + (R > 7 ? 7 * k : 0)
    let q0 = j0 * 16, q1 = q0 + 16, q2 = q0 + 32, q3 = q0 + 48
    // Partial sums stored as they are and loaded back continue the same sequence of multiply-adds.
    let zero = SIMD16<Float>(), continues = s.continues
    @inline(__always) func start(_ r: Int, _ q: Int) -> SIMD16<Float> {
        continues ? loadLanes(y + r * p + q, min(16, p - q)) : zero
    }
    var a00 = start(0, q0)
    var a01 = (V > 1) ? start(0, q1) : zero
    var a02 = (V > 2) ? start(0, q2) : zero
    var a03 = (V > 3) ? start(0, q3) : zero
    var a10 = (R > 1) ? start(1, q0) : zero
    var a11 = (R > 1 && V > 1) ? start(1, q1) : zero
    var a12 = (R > 1 && V > 2) ? start(1, q2) : zero
    var a13 = (R > 1 && V > 3) ? start(1, q3) : zero
    var a20 = (R > 2) ? start(2, q0) : zero
    var a21 = (R > 2 && V > 1) ? start(2, q1) : zero
    var a22 = (R > 2 && V > 2) ? start(2, q2) : zero
    var a23 = (R > 2 && V > 3) ? start(2, q3) : zero
    var a30 = (R > 3) ? start(3, q0) : zero
    var a31 = (R > 3 && V > 1) ? start(3, q1) : zero
    var a32 = (R > 3 && V > 2) ? start(3, q2) : zero
    var a33 = (R > 3 && V > 3) ? start(3, q3) : zero
    var a40 = (R > 4) ? start(4, q0) : zero
    var a41 = (R > 4 && V > 1) ? start(4, q1) : zero
    var a42 = (R > 4 && V > 2) ? start(4, q2) : zero
    var a43 = (R > 4 && V > 3) ? start(4, q3) : zero
    var a50 = (R > 5) ? start(5, q0) : zero
    var a51 = (R > 5 && V > 1) ? start(5, q1) : zero
    var a52 = (R > 5 && V > 2) ? start(5, q2) : zero
    var a53 = (R > 5 && V > 3) ? start(5, q3) : zero
    var a60 = (R > 6) ? start(6, q0) : zero
    var a61 = (R > 6 && V > 1) ? start(6, q1) : zero
    var a62 = (R > 6 && V > 2) ? start(6, q2) : zero
    var a63 = (R > 6 && V > 3) ? start(6, q3) : zero
    var a70 = (R > 7) ? start(7, q0) : zero
    var a71 = (R > 7 && V > 1) ? start(7, q1) : zero
    var a72 = (R > 7 && V > 2) ? start(7, q2) : zero
    var a73 = (R > 7 && V > 3) ? start(7, q3) : zero
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
                addProducts(V, &a00, &a01, &a02, &a03, x0, x1, x2, x3, w0[i])
                if R > 1 { addProducts(V, &a10, &a11, &a12, &a13, x0, x1, x2, x3, w1[i]) }
                if R > 2 { addProducts(V, &a20, &a21, &a22, &a23, x0, x1, x2, x3, w2[i]) }
                if R > 3 { addProducts(V, &a30, &a31, &a32, &a33, x0, x1, x2, x3, w3[i]) }
                if R > 4 { addProducts(V, &a40, &a41, &a42, &a43, x0, x1, x2, x3, w4[i]) }
                if R > 5 { addProducts(V, &a50, &a51, &a52, &a53, x0, x1, x2, x3, w5[i]) }
                if R > 6 { addProducts(V, &a60, &a61, &a62, &a63, x0, x1, x2, x3, w6[i]) }
                if R > 7 { addProducts(V, &a70, &a71, &a72, &a73, x0, x1, x2, x3, w7[i]) }
                i += 1
                source += copyFloats
            }
        }
    }
    // Straight-line stores: a loop over the accumulators would keep them in memory.
    let finishes = s.finishes
    @inline(__always) func put(_ a: SIMD16<Float>, _ r: Int, _ q: Int) {
        var z = a
        let lanes = min(16, p - q)
        guard finishes else { return storeLanes(z, y + r * p + q, lanes) }
        if let bias { z = z + SIMD16(repeating: bias[r]) }
        if let pre { storeLanes(z, pre + r * p + q, lanes) }
        storeLanes(activate16(z, code, slope), y + r * p + q, lanes)
    }
    put(a00, 0, q0)
    if V > 1 { put(a01, 0, q1) }
    if V > 2 { put(a02, 0, q2) }
    if V > 3 { put(a03, 0, q3) }
    if R > 1 { put(a10, 1, q0) }
    if R > 1 && V > 1 { put(a11, 1, q1) }
    if R > 1 && V > 2 { put(a12, 1, q2) }
    if R > 1 && V > 3 { put(a13, 1, q3) }
    if R > 2 { put(a20, 2, q0) }
    if R > 2 && V > 1 { put(a21, 2, q1) }
    if R > 2 && V > 2 { put(a22, 2, q2) }
    if R > 2 && V > 3 { put(a23, 2, q3) }
    if R > 3 { put(a30, 3, q0) }
    if R > 3 && V > 1 { put(a31, 3, q1) }
    if R > 3 && V > 2 { put(a32, 3, q2) }
    if R > 3 && V > 3 { put(a33, 3, q3) }
    if R > 4 { put(a40, 4, q0) }
    if R > 4 && V > 1 { put(a41, 4, q1) }
    if R > 4 && V > 2 { put(a42, 4, q2) }
    if R > 4 && V > 3 { put(a43, 4, q3) }
    if R > 5 { put(a50, 5, q0) }
    if R > 5 && V > 1 { put(a51, 5, q1) }
    if R > 5 && V > 2 { put(a52, 5, q2) }
    if R > 5 && V > 3 { put(a53, 5, q3) }
    if R > 6 { put(a60, 6, q0) }
    if R > 6 && V > 1 { put(a61, 6, q1) }
    if R > 6 && V > 2 { put(a62, 6, q2) }
    if R > 6 && V > 3 { put(a63, 6, q3) }
    if R > 7 { put(a70, 7, q0) }
    if R > 7 && V > 1 { put(a71, 7, q1) }
    if R > 7 && V > 2 { put(a72, 7, q2) }
    if R > 7 && V > 3 { put(a73, 7, q3) }
}

/// Every vector of positions for output channels [0, R.count), in blocks of at most `maxV` (3 or 4)
/// vectors.
@inline(__always)
func shiftedRowChannels<R: BlockCount>(
    _ r: R.Type, _ maxV: Int, _ rows: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ s: ShiftedRowShape,
    _ y: UnsafeMutablePointer<Float>, _ pre: UnsafeMutablePointer<Float>?, _ bias: UnsafePointer<Float>?,
    _ code: ActivationCode, _ slope: Float
) {
    let vectors = (s.pixels + 15) / 16
    var j0 = 0
    while j0 < vectors {
        let v = min(maxV, vectors - j0)
        switch v {
        case 1: shiftedRowBlock(r, One.self, j0, rows, w, s, y, pre, bias, code, slope)
        case 2: shiftedRowBlock(r, Two.self, j0, rows, w, s, y, pre, bias, code, slope)
        case 3: shiftedRowBlock(r, Three.self, j0, rows, w, s, y, pre, bias, code, slope)
        default: shiftedRowBlock(r, Four.self, j0, rows, w, s, y, pre, bias, code, slope)
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
        let r = ConvGeometry.directBlockChannels(left: outChannels - oc), v = ConvGeometry.directBlockVectors(channels: r)
        let wr = w + oc * k, yr = y + oc * p, pr = pre.map { $0 + oc * p }, br = bias.map { $0 + oc }
        switch r {
        case 8: shiftedRowChannels(Eight.self, v, rows, wr, s, yr, pr, br, code, slope)
        case 6: shiftedRowChannels(Six.self, v, rows, wr, s, yr, pr, br, code, slope)
        case 4: shiftedRowChannels(Four.self, v, rows, wr, s, yr, pr, br, code, slope)
        case 2: shiftedRowChannels(Two.self, v, rows, wr, s, yr, pr, br, code, slope)
        default: shiftedRowChannels(One.self, v, rows, wr, s, yr, pr, br, code, slope)
        }
        oc += r
    }
}

/// Samples [first, end) of a stride-1, dilation-1 convolution, one group at a time through the
/// row-shifted copies in `scratch` (`geometry.shiftedRowFloats` floats).
public func conv2dForwardDirect(
    _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>,
    _ pre: UnsafeMutablePointer<Float>?, _ scratch: UnsafeMutablePointer<Float>, _ g: ConvGeometry,
    _ code: ActivationCode, _ slope: Float, _ first: Int, _ end: Int
) {
    let groupIn = g.groupInChannels, groupOut = g.groupOutChannels, k = g.patchSize, p = g.outPixels
    let chunk = g.shiftedRowChunkChannels, taps = g.kernelHeight * g.kernelWidth
    var s = ShiftedRowShape(
        channels: chunk, kernelHeight: g.kernelHeight, kernelWidth: g.kernelWidth,
        paddedHeight: g.outHeight + g.kernelHeight - 1, outWidth: g.outWidth, pixels: p, patch: k, continues: false,
        finishes: true)
    // The last partial vector reads up to 15 floats past the copies: finite values, never stored.
    (scratch + chunk * s.kernelWidth * s.paddedHeight * s.outWidth).update(repeating: 0, count: 16)
    for n in first..<max(first, end) {
        let sample = x + n * g.inputFloats
        for group in 0..<g.groups {
            let oc = group * groupOut, at = n * g.outputFloats + oc * p
            // Chunks of channels whose copies stay in L1 while every block of outputs reads them.
            var c = 0
            while c < groupIn {
                s.channels = min(chunk, groupIn - c)
                s.continues = c > 0
                s.finishes = c + s.channels == groupIn
                shiftedRowCopies(
                    sample + (group * groupIn + c) * g.inPixels, sample + g.inputFloats, channels: s.channels,
                    height: g.inHeight, width: g.inWidth, padTop: g.padTop, padLeft: g.padLeft,
                    paddedHeight: s.paddedHeight, kernelWidth: g.kernelWidth, outWidth: g.outWidth, scratch)
                shiftedRowProduct(
                    scratch, w + oc * k + c * taps, groupOut, s, y + at, pre.map { $0 + at }, bias.map { $0 + oc }, code,
                    slope)
                c += s.channels
            }
        }
    }
}
