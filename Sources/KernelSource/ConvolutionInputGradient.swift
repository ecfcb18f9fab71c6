import KernelInterface

// The input gradient of a stride-1, dilation-1 convolution with sixteen samples in the vector lanes:
// dx[n][c][iy][ix] = sum over (o, kh, kw) of w[o][c][kh][kw] * dy[n][o][iy + padTop - kh][ix + padLeft - kw],
// only over the taps whose dy position lies inside dy (no products of padding). Every dx element sums
// its products in one order (o, kh, kw ascending, fused multiply-adds from zero), whatever block or
// part computes it, so the bits do not depend on the batch split.

/// The kernel taps [low, high) along one axis whose output position (input + pad - tap) lies in [0, out).
@inline(__always)
func validTaps(_ input: Int, _ pad: Int, _ out: Int, _ kernel: Int) -> (low: Int, high: Int) {
    (max(0, input + pad - out + 1), min(kernel, input + pad + 1))
}

/// Stores a block's accumulators, R channel rows of V positions: lane l of a[r][q] is dx of sample l,
/// channel row r, position q (`dx` at the block's first channel and position of the first sample;
/// `lanes` samples). Inlined into blocks whose R and V are constants.
@inline(__always)
func storeSampleLaneBlock(
    _ R: Int, _ V: Int, _ dx: UnsafeMutablePointer<Float>, _ g: ConvGeometry, _ lanes: Int,
    _ a00: SIMD16<Float>, _ a01: SIMD16<Float>, _ a02: SIMD16<Float>, _ a03: SIMD16<Float>,
    _ a10: SIMD16<Float>, _ a11: SIMD16<Float>, _ a12: SIMD16<Float>, _ a13: SIMD16<Float>,
    _ a20: SIMD16<Float>, _ a21: SIMD16<Float>, _ a22: SIMD16<Float>, _ a23: SIMD16<Float>,
    _ a30: SIMD16<Float>, _ a31: SIMD16<Float>, _ a32: SIMD16<Float>, _ a33: SIMD16<Float>,
    _ a40: SIMD16<Float>, _ a41: SIMD16<Float>, _ a42: SIMD16<Float>, _ a43: SIMD16<Float>,
    _ a50: SIMD16<Float>, _ a51: SIMD16<Float>, _ a52: SIMD16<Float>, _ a53: SIMD16<Float>
) {
    let inPixels = g.inPixels, sampleFloats = g.inputFloats
    @inline(__always) func put(_ a: SIMD16<Float>, _ r: Int, _ q: Int) {
        let target = dx + r * inPixels + q
        for lane in 0..<lanes { target[lane * sampleFloats] = a[lane] }
    }
    put(a00, 0, 0); if V > 1 { put(a01, 0, 1) }; if V > 2 { put(a02, 0, 2) }; if V > 3 { put(a03, 0, 3) }
    if R > 1 { put(a10, 1, 0); if V > 1 { put(a11, 1, 1) }; if V > 2 { put(a12, 1, 2) }; if V > 3 { put(a13, 1, 3) } }
    if R > 2 { put(a20, 2, 0); if V > 1 { put(a21, 2, 1) }; if V > 2 { put(a22, 2, 2) }; if V > 3 { put(a23, 2, 3) } }
    if R > 3 { put(a30, 3, 0); if V > 1 { put(a31, 3, 1) }; if V > 2 { put(a32, 3, 2) }; if V > 3 { put(a33, 3, 3) } }
    if R > 4 { put(a40, 4, 0); if V > 1 { put(a41, 4, 1) }; if V > 2 { put(a42, 4, 2) }; if V > 3 { put(a43, 4, 3) } }
    if R > 5 { put(a50, 5, 0); if V > 1 { put(a51, 5, 1) }; if V > 2 { put(a52, 5, 2) }; if V > 3 { put(a53, 5, 3) } }
}

/// dx for input channels [c, c + R.count) of one group at row iy, positions [ix, ix + V.count), which
/// share their column taps [kwLow, kwHigh); row taps [khLow, khHigh). dyT is the group's
/// [o][oy][ox][16 lanes]; w points at w[group's first output][c][0][0]; `lanes` samples are stored
/// at dx (the first lane's dx[c][iy][ix]), `sampleFloats` apart.
@inline(never)
func sampleLaneBlock<R: BlockCount, V: BlockCount>(
    _: R.Type, _: V.Type, _ dyT: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ g: ConvGeometry,
    _ iy: Int, _ ix: Int, _ kh: (low: Int, high: Int), _ kw: (low: Int, high: Int),
    _ dx: UnsafeMutablePointer<Float>, _ lanes: Int
) {
    let R = R.count, V = V.count
    let taps = g.kernelHeight * g.kernelWidth, patch = g.groupInChannels * taps
    let outWidth = g.outWidth, outPixels = g.outPixels
    let zero = SIMD16<Float>()
    var a00 = zero, a01 = zero, a02 = zero, a03 = zero
    var a10 = zero, a11 = zero, a12 = zero, a13 = zero
    var a20 = zero, a21 = zero, a22 = zero, a23 = zero
    var a30 = zero, a31 = zero, a32 = zero, a33 = zero
    var a40 = zero, a41 = zero, a42 = zero, a43 = zero
    var a50 = zero, a51 = zero, a52 = zero, a53 = zero
    for o in 0..<g.groupOutChannels {
        let wo = w + o * patch, plane = dyT + o * outPixels * 16
        for i in kh.low..<kh.high {
            let row = plane + (iy + g.padTop - i) * outWidth * 16
            let wi = wo + i * g.kernelWidth
            for j in kw.low..<kw.high {
                // Positions ix...ix+V-1 read dy columns ox...ox+V-1: consecutive vectors.
                let d = row + (ix + g.padLeft - j) * 16
                let x0 = load16(d)
                let x1 = V > 1 ? load16(d + 16) : zero
                let x2 = V > 2 ? load16(d + 32) : zero
                let x3 = V > 3 ? load16(d + 48) : zero
                let wj = wi + j
                addProducts(V, &a00, &a01, &a02, &a03, x0, x1, x2, x3, wj[0])
                if R > 1 { addProducts(V, &a10, &a11, &a12, &a13, x0, x1, x2, x3, wj[taps]) }
                if R > 2 { addProducts(V, &a20, &a21, &a22, &a23, x0, x1, x2, x3, wj[2 * taps]) }
                if R > 3 { addProducts(V, &a30, &a31, &a32, &a33, x0, x1, x2, x3, wj[3 * taps]) }
                if R > 4 { addProducts(V, &a40, &a41, &a42, &a43, x0, x1, x2, x3, wj[4 * taps]) }
                if R > 5 { addProducts(V, &a50, &a51, &a52, &a53, x0, x1, x2, x3, wj[5 * taps]) }
            }
        }
    }
    storeSampleLaneBlock(
        R, V, dx, g, lanes, a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33,
        a40, a41, a42, a43, a50, a51, a52, a53)
}

/// As `sampleLaneBlock`, for positions [ix, ix + V.count) whose column taps differ (at the left and
/// right borders): position q takes tap j only where j lies in its own range, so the block multiplies
/// no padding and every element keeps the (o, kh, kw) order.
@inline(never)
func sampleLaneBorderBlock<R: BlockCount, V: BlockCount>(
    _: R.Type, _: V.Type, _ dyT: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ g: ConvGeometry,
    _ iy: Int, _ ix: Int, _ kh: (low: Int, high: Int), _ dx: UnsafeMutablePointer<Float>, _ lanes: Int
) {
    let R = R.count, V = V.count
    let taps = g.kernelHeight * g.kernelWidth, patch = g.groupInChannels * taps
    let outWidth = g.outWidth, outPixels = g.outPixels
    let k0 = validTaps(ix, g.padLeft, outWidth, g.kernelWidth)
    let k1 = V > 1 ? validTaps(ix + 1, g.padLeft, outWidth, g.kernelWidth) : (low: 0, high: 0)
    let k2 = V > 2 ? validTaps(ix + 2, g.padLeft, outWidth, g.kernelWidth) : (low: 0, high: 0)
    let k3 = V > 3 ? validTaps(ix + 3, g.padLeft, outWidth, g.kernelWidth) : (low: 0, high: 0)
    let last = V > 3 ? k3 : V > 2 ? k2 : V > 1 ? k1 : k0
    let zero = SIMD16<Float>()
    var a00 = zero, a01 = zero, a02 = zero, a03 = zero
    var a10 = zero, a11 = zero, a12 = zero, a13 = zero
    var a20 = zero, a21 = zero, a22 = zero, a23 = zero
    var a30 = zero, a31 = zero, a32 = zero, a33 = zero
    var a40 = zero, a41 = zero, a42 = zero, a43 = zero
    var a50 = zero, a51 = zero, a52 = zero, a53 = zero
    @inline(__always) func add(
        _ a0: inout SIMD16<Float>, _ a1: inout SIMD16<Float>, _ a2: inout SIMD16<Float>, _ a3: inout SIMD16<Float>,
        _ a4: inout SIMD16<Float>, _ a5: inout SIMD16<Float>, _ x: SIMD16<Float>, _ wj: UnsafePointer<Float>
    ) {
        a0 = a0.addingProduct(x, wj[0])
        if R > 1 { a1 = a1.addingProduct(x, wj[taps]) }
        if R > 2 { a2 = a2.addingProduct(x, wj[2 * taps]) }
        if R > 3 { a3 = a3.addingProduct(x, wj[3 * taps]) }
        if R > 4 { a4 = a4.addingProduct(x, wj[4 * taps]) }
        if R > 5 { a5 = a5.addingProduct(x, wj[5 * taps]) }
    }
    for o in 0..<g.groupOutChannels {
        let wo = w + o * patch, plane = dyT + o * outPixels * 16
        for i in kh.low..<kh.high {
            let row = plane + (iy + g.padTop - i) * outWidth * 16
            let wi = wo + i * g.kernelWidth
            for j in k0.low..<last.high {
                let d = row + (ix + g.padLeft - j) * 16, wj = wi + j
                if j >= k0.low && j < k0.high { add(&a00, &a10, &a20, &a30, &a40, &a50, load16(d), wj) }
                if V > 1 && j >= k1.low && j < k1.high { add(&a01, &a11, &a21, &a31, &a41, &a51, load16(d + 16), wj) }
                if V > 2 && j >= k2.low && j < k2.high { add(&a02, &a12, &a22, &a32, &a42, &a52, load16(d + 32), wj) }
                if V > 3 && j >= k3.low && j < k3.high { add(&a03, &a13, &a23, &a33, &a43, &a53, load16(d + 48), wj) }
            }
        }
    }
    storeSampleLaneBlock(
        R, V, dx, g, lanes, a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33,
        a40, a41, a42, a43, a50, a51, a52, a53)
}

/// Every position of input channels [c, c + R.count) of one group, four adjacent positions at a time
/// (fewer at the end of a row): one shared range of column taps inside, per-position ranges at the
/// borders.
func sampleLaneChannels<R: BlockCount>(
    _: R.Type, _ dyT: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ g: ConvGeometry,
    _ dx: UnsafeMutablePointer<Float>, _ lanes: Int
) {
    let width = g.inWidth
    for iy in 0..<g.inHeight {
        let kh = validTaps(iy, g.padTop, g.outHeight, g.kernelHeight)
        var ix = 0
        while ix + 4 <= width {
            let kw = validTaps(ix, g.padLeft, g.outWidth, g.kernelWidth), at = dx + iy * width + ix
            if validTaps(ix + 3, g.padLeft, g.outWidth, g.kernelWidth) == kw {
                sampleLaneBlock(R.self, Four.self, dyT, w, g, iy, ix, kh, kw, at, lanes)
            } else {
                sampleLaneBorderBlock(R.self, Four.self, dyT, w, g, iy, ix, kh, at, lanes)
            }
            ix += 4
        }
        let at = dx + iy * width + ix
        switch width - ix {
        case 3: sampleLaneBorderBlock(R.self, Three.self, dyT, w, g, iy, ix, kh, at, lanes)
        case 2: sampleLaneBorderBlock(R.self, Two.self, dyT, w, g, iy, ix, kh, at, lanes)
        case 1: sampleLaneBorderBlock(R.self, One.self, dyT, w, g, iy, ix, kh, at, lanes)
        default: break
        }
    }
}

/// dx for samples [first, end) (overwritten) of a convolution that `ConvGeometry.allowsDirect`,
/// sixteen samples at a time; scratch holds dy transposed to [o][oy][ox][16 samples]
/// (`geometry.sampleLaneInputGradientFloats` floats).
public func conv2dBackwardInputSampleLanes(
    _ dy: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
    _ scratch: UnsafeMutablePointer<Float>, _ g: ConvGeometry, _ first: Int, _ end: Int
) {
    let outputFloats = g.outputFloats, groupIn = g.groupInChannels, taps = g.kernelHeight * g.kernelWidth
    var n = first
    while n < end {
        let lanes = min(16, end - n), source = dy + n * outputFloats
        // Lanes past the batch stay zero: they are computed and never stored.
        for e in 0..<outputFloats {
            var v = SIMD16<Float>()
            for lane in 0..<lanes { v[lane] = source[lane * outputFloats + e] }
            store16(v, scratch + e * 16)
        }
        let sample = dx + n * g.inputFloats
        for group in 0..<g.groups {
            let dyT = UnsafePointer(scratch + group * g.groupOutChannels * g.outPixels * 16)
            let wg = w + group * g.groupOutChannels * g.patchSize
            var c = 0
            while c < groupIn {
                let r = ConvGeometry.sampleLaneBlockChannels(left: groupIn - c)
                let wc = wg + c * taps, at = sample + (group * groupIn + c) * g.inPixels
                switch r {
                case 6: sampleLaneChannels(Six.self, dyT, wc, g, at, lanes)
                case 4: sampleLaneChannels(Four.self, dyT, wc, g, at, lanes)
                case 2: sampleLaneChannels(Two.self, dyT, wc, g, at, lanes)
                default: sampleLaneChannels(One.self, dyT, wc, g, at, lanes)
                }
                c += r
            }
        }
        n += lanes
    }
}
