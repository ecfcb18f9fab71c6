import KernelInterface

// The weight gradient of a stride-1 convolution without unfolding (`Stride1WeightGradientLayout`):
// dw[co, ci, kh, kw] = sum over samples and positions p of dy[co, p] * shifted[ci, kw][p + kh * outWidth]
// (dilation 1), each sample's input copied once per kernel column. A register block of up to 4
// output channels x 5 kernel rows keeps sixteen lanes per weight (20 accumulators, 9 loads per 20
// fused multiply-adds) over every sample of the batch; each lane sums its positions in one fixed order
// (samples, then positions, ascending) and the lanes are added in a fixed tree at the end, so the bits
// are the same for any split of the tasks, any samples per pass and any kernel set. Samples are copied
// a pass at a time into planes that stay in cache; the accumulators go to scratch between passes,
// which does not change their values.

/// v with the lanes from `lanes` on set to zero. Integer arithmetic builds the mask (lane i - lanes is
/// negative, all ones after the arithmetic shift, exactly for i < lanes): comparisons into SIMD masks
/// are built one lane at a time.
@inline(__always)
func keepingLanes(_ v: SIMD16<Float>, _ lanes: Int) -> SIMD16<Float> {
    let indices = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    let mask = (indices &- SIMD16<Int32>(repeating: Int32(lanes))) &>> SIMD16<Int32>(repeating: 31)
    return unsafeBitCast(unsafeBitCast(v, to: SIMD16<Int32>.self) & mask, to: SIMD16<Float>.self)
}

/// Copies `count` floats from `source` to `target` in whole vectors, storing zeros in the lanes past
/// `count` (up to a multiple of 16). Reads past `count` only below `sourceEnd`.
@inline(__always)
func copyRowPaddingZeros(_ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>, _ count: Int, _ sourceEnd: UnsafePointer<Float>) {
    // Short rows (LeNet's conv2: 10 floats) in one vector, without the loop.
    if count <= 16 && source + 16 <= sourceEnd {
        store16(keepingLanes(load16(source), count), target)
        return
    }
    var c = 0
    while c < count {
        let lanes = min(16, count - c)
        var v: SIMD16<Float>
        if source + c + 16 <= sourceEnd {
            v = load16(source + c)
            if lanes < 16 { v = keepingLanes(v, lanes) }
        } else {
            v = loadPartial16(source + c, lanes)
        }
        store16(v, target + c)
        c += 16
    }
}

public func conv2dBackwardWeightsStride1(
    _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>,
    _ db: UnsafeMutablePointer<Float>?, _ scratch: UnsafeMutablePointer<Float>, _ rows: Int, _ g: ConvGeometry,
    _ first: Int, _ end: Int
) {
    guard let layout = Stride1WeightGradientLayout(g) else { preconditionFailure("this weight gradient needs stride 1") }
    let first = max(0, first), end = min(layout.tasks, end)
    guard end > first else { return }
    let k = g.patchSize, kw = g.kernelWidth, pass = layout.samplesPerPass, vectors = layout.vectors
    let shiftedPlane = layout.shiftedPlaneFloats, outputPlane = layout.outputPlaneFloats, ow = g.outWidth
    // Aligned to 64 bytes, so the dy loads are whole cache lines.
    let misalignment = Int(bitPattern: UnsafeRawPointer(scratch)) & 63
    let accumulators = scratch + (misalignment == 0 ? 0 : (64 - misalignment) / 4)
    let biasAccumulators = accumulators + g.weightFloats * 16
    let shiftedPlanes = accumulators + layout.accumulatorFloats
    let outputPlanes = shiftedPlanes + pass * g.inChannels * kw * shiftedPlane
    let shiftedSampleStride = g.inChannels * kw * shiftedPlane, outputSampleStride = g.outChannels * outputPlane

    // The channels and kernel columns this part's tasks read: those of its groups, and within one group
    // the columns from its first task's to its last's.
    let firstGroup = layout.group(ofTask: first), lastGroup = layout.group(ofTask: end - 1)
    let outFirst = firstGroup * g.groupOutChannels, outEnd = (lastGroup + 1) * g.groupOutChannels
    let inFirst = firstGroup * g.groupInChannels, inEnd = (lastGroup + 1) * g.groupInChannels
    let columnFirst = firstGroup == lastGroup ? layout.task(first).kernelColumn : 0
    let columnEnd = firstGroup == lastGroup ? layout.task(end - 1).kernelColumn + 1 : kw

    for t in first..<end {
        let task = layout.task(t)
        for r in 0..<task.outChannels {
            for row in 0..<task.kernelRows {
                (accumulators + ((task.outChannel + r) * k + task.patchIndex + row * kw) * 16).update(repeating: 0, count: 16)
            }
            if task.ownsBias { (biasAccumulators + (task.outChannel + r) * 16).update(repeating: 0, count: 16) }
        }
    }
    // Padding and the positions past the last stay zero across passes: the copies write only rows.
    for s in 0..<min(pass, rows) {
        for ci in inFirst..<inEnd {
            let planes = shiftedPlanes + s * shiftedSampleStride + (ci * kw + columnFirst) * shiftedPlane
            planes.update(repeating: 0, count: (columnEnd - columnFirst) * shiftedPlane)
        }
        (outputPlanes + s * outputSampleStride + outFirst * outputPlane).update(repeating: 0, count: (outEnd - outFirst) * outputPlane)
    }

    let xEnd = x + rows * g.inputFloats, dyEnd = dy + rows * g.outputFloats
    var n0 = 0
    while n0 < rows {
        let samples = min(pass, rows - n0)
        for s in 0..<samples {
            let n = n0 + s
            for ci in inFirst..<inEnd {
                let source = x + n * g.inputFloats + ci * g.inPixels
                for column in columnFirst..<columnEnd {
                    let plane = shiftedPlanes + s * shiftedSampleStride + (ci * kw + column) * shiftedPlane
                    // Output column ox reads input column ox + shift: those inside the input.
                    let shift = column * g.dilationWidth - g.padLeft
                    let firstColumn = min(max(-shift, 0), ow), endColumn = max(min(g.inWidth - shift, ow), firstColumn)
                    guard endColumn > firstColumn else { continue }
                    for r in 0..<layout.paddedHeight {
                        let iy = r - g.padTop
                        guard iy >= 0 && iy < g.inHeight else { continue }
                        copyRowPaddingZeros(
                            source + iy * g.inWidth + firstColumn + shift, plane + r * ow + firstColumn, endColumn - firstColumn, xEnd)
                    }
                }
            }
            guard layout.copiesOutputGradient else { continue }
            for co in outFirst..<outEnd {
                let plane = outputPlanes + s * outputSampleStride + co * outputPlane
                copyRowPaddingZeros(dy + n * g.outputFloats + co * g.outPixels, plane, layout.positions, dyEnd)
            }
        }
        // dy's planes: the copies, or dy itself when its planes are whole vectors.
        let dyPlanes = layout.copiesOutputGradient ? UnsafePointer(outputPlanes) : dy + n0 * g.outputFloats
        let dyPlane = layout.copiesOutputGradient ? outputPlane : g.outPixels
        let dySampleStride = layout.copiesOutputGradient ? outputSampleStride : g.outputFloats
        for t in first..<end {
            let task = layout.task(t)
            let d = dyPlanes + task.outChannel * dyPlane
            let xs = UnsafePointer(
                shiftedPlanes + (task.inChannel * kw + task.kernelColumn) * shiftedPlane + task.kernelRow * g.dilationHeight * ow)
            let operands = TapBlockOperands(
                acc: accumulators + (task.outChannel * k + task.patchIndex) * 16, accRowStride: k * 16, accTapStride: kw * 16, dy: d,
                dyRowStride: dyPlane, dySampleStride: dySampleStride, x: xs, tapStride: g.dilationHeight * ow,
                xSampleStride: shiftedSampleStride, samples: samples, vectors: vectors)
            tapBlock(task.outChannels, task.kernelRows, operands)
            guard task.ownsBias && db != nil else { continue }
            biasBlock(task.outChannels, biasAccumulators + task.outChannel * 16, d, dyPlane, dySampleStride, samples, vectors)
        }
        n0 += samples
    }

    for t in first..<end {
        let task = layout.task(t)
        for r in 0..<task.outChannels {
            let co = task.outChannel + r
            for row in 0..<task.kernelRows {
                let index = co * k + task.patchIndex + row * kw
                dw[index] = treeSum16(load16(accumulators + index * 16))
            }
            if let db, task.ownsBias { db[co] = treeSum16(load16(biasAccumulators + co * 16)) }
        }
    }
}

/// b[r] (16 lanes, at b + r * 16) += dy[r, p] over positions p = 0..<16 * vectors of each sample, for
/// r < channels (1...4): four independent sums (the missing ones repeat the last real one), so the
/// additions' latency overlaps.
@inline(__always)
func biasBlock(
    _ channels: Int, _ b: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ dyRowStride: Int, _ dySampleStride: Int,
    _ samples: Int, _ vectors: Int
) {
    let r1 = min(1, channels - 1), r2 = min(2, channels - 1), r3 = min(3, channels - 1)
    var b0 = load16(b), b1 = load16(b + r1 * 16), b2 = load16(b + r2 * 16), b3 = load16(b + r3 * 16)
    for s in 0..<samples {
        let d0 = dy + s * dySampleStride
        let d1 = d0 + r1 * dyRowStride, d2 = d0 + r2 * dyRowStride, d3 = d0 + r3 * dyRowStride
        for v in 0..<vectors {
            b0 = b0 + load16(d0 + v * 16)
            b1 = b1 + load16(d1 + v * 16)
            b2 = b2 + load16(d2 + v * 16)
            b3 = b3 + load16(d3 + v * 16)
        }
    }
    store16(b3, b + r3 * 16)
    store16(b2, b + r2 * 16)
    store16(b1, b + r1 * 16)
    store16(b0, b)
}

/// A register block's operands: accumulators acc[r, t] (16 lanes, at acc + r * accRowStride + t *
/// accTapStride), dy rows (dyRowStride apart) and the input at the block's first tap (taps tapStride
/// apart), both for `samples` samples (sample strides apart) of `vectors` vectors.
struct TapBlockOperands {
    var acc: UnsafeMutablePointer<Float>
    var accRowStride: Int
    var accTapStride: Int
    var dy: UnsafePointer<Float>
    var dyRowStride: Int
    var dySampleStride: Int
    var x: UnsafePointer<Float>
    var tapStride: Int
    var xSampleStride: Int
    var samples: Int
    var vectors: Int
}

/// `tapBlockBody` with constant sizes, each its own function: inlined all in one caller, the compiler
/// stopped inlining and kept one copy with the sizes as variables (branches in the inner loop).
func tapBlock(_ channels: Int, _ taps: Int, _ o: TapBlockOperands) {
    switch (channels, taps) {
    case (4, 5): tapBlock4x5(o)
    case (4, 4): tapBlock4x4(o)
    case (4, 3): tapBlock4x3(o)
    case (4, 2): tapBlock4x2(o)
    case (4, _): tapBlock4x1(o)
    case (3, 5): tapBlock3x5(o)
    case (3, 4): tapBlock3x4(o)
    case (3, 3): tapBlock3x3(o)
    case (3, 2): tapBlock3x2(o)
    case (3, _): tapBlock3x1(o)
    case (2, 5): tapBlock2x5(o)
    case (2, 4): tapBlock2x4(o)
    case (2, 3): tapBlock2x3(o)
    case (2, 2): tapBlock2x2(o)
    case (2, _): tapBlock2x1(o)
    case (_, 5): tapBlock1x5(o)
    case (_, 4): tapBlock1x4(o)
    case (_, 3): tapBlock1x3(o)
    case (_, 2): tapBlock1x2(o)
    default: tapBlock1x1(o)
    }
}

@inline(never) func tapBlock4x5(_ o: TapBlockOperands) { tapBlockBody(4, 5, o) }
@inline(never) func tapBlock4x4(_ o: TapBlockOperands) { tapBlockBody(4, 4, o) }
@inline(never) func tapBlock4x3(_ o: TapBlockOperands) { tapBlockBody(4, 3, o) }
@inline(never) func tapBlock4x2(_ o: TapBlockOperands) { tapBlockBody(4, 2, o) }
@inline(never) func tapBlock4x1(_ o: TapBlockOperands) { tapBlockBody(4, 1, o) }
@inline(never) func tapBlock3x5(_ o: TapBlockOperands) { tapBlockBody(3, 5, o) }
@inline(never) func tapBlock3x4(_ o: TapBlockOperands) { tapBlockBody(3, 4, o) }
@inline(never) func tapBlock3x3(_ o: TapBlockOperands) { tapBlockBody(3, 3, o) }
@inline(never) func tapBlock3x2(_ o: TapBlockOperands) { tapBlockBody(3, 2, o) }
@inline(never) func tapBlock3x1(_ o: TapBlockOperands) { tapBlockBody(3, 1, o) }
@inline(never) func tapBlock2x5(_ o: TapBlockOperands) { tapBlockBody(2, 5, o) }
@inline(never) func tapBlock2x4(_ o: TapBlockOperands) { tapBlockBody(2, 4, o) }
@inline(never) func tapBlock2x3(_ o: TapBlockOperands) { tapBlockBody(2, 3, o) }
@inline(never) func tapBlock2x2(_ o: TapBlockOperands) { tapBlockBody(2, 2, o) }
@inline(never) func tapBlock2x1(_ o: TapBlockOperands) { tapBlockBody(2, 1, o) }
@inline(never) func tapBlock1x5(_ o: TapBlockOperands) { tapBlockBody(1, 5, o) }
@inline(never) func tapBlock1x4(_ o: TapBlockOperands) { tapBlockBody(1, 4, o) }
@inline(never) func tapBlock1x3(_ o: TapBlockOperands) { tapBlockBody(1, 3, o) }
@inline(never) func tapBlock1x2(_ o: TapBlockOperands) { tapBlockBody(1, 2, o) }
@inline(never) func tapBlock1x1(_ o: TapBlockOperands) { tapBlockBody(1, 1, o) }

/// acc[r, t] += dy[r, p] * x[p + t * tapStride] over positions p = 0..<16 * vectors of each sample, for
/// r < channels (1...4) and t < taps (1...5). Called with constant sizes, so only the real
/// accumulators exist.
@inline(__always)
func tapBlockBody(_ channels: Int, _ taps: Int, _ o: TapBlockOperands) {
    let acc = o.acc, accRowStride = o.accRowStride, accTapStride = o.accTapStride, dy = o.dy, dyRowStride = o.dyRowStride, dySampleStride = o.dySampleStride
    let x = o.x, tapStride = o.tapStride, xSampleStride = o.xSampleStride, samples = o.samples, vectors = o.vectors
    @inline(__always) func a(_ r: Int, _ t: Int) -> UnsafeMutablePointer<Float> { acc + r * accRowStride + t * accTapStride }
    @inline(__always) func initial(_ r: Int, _ t: Int) -> SIMD16<Float> { channels > r && taps > t ? load16(a(r, t)) : SIMD16() }
    var s00 = initial(0, 0), s01 = initial(0, 1), s02 = initial(0, 2), s03 = initial(0, 3), s04 = initial(0, 4)
    var s10 = initial(1, 0), s11 = initial(1, 1), s12 = initial(1, 2), s13 = initial(1, 3), s14 = initial(1, 4)
    var s20 = initial(2, 0), s21 = initial(2, 1), s22 = initial(2, 2), s23 = initial(2, 3), s24 = initial(2, 4)
    var s30 = initial(3, 0), s31 = initial(3, 1), s32 = initial(3, 2), s33 = initial(3, 3), s34 = initial(3, 4)
    for s in 0..<samples {
        let xs = x + s * xSampleStride, d0 = dy + s * dySampleStride
        let d1 = d0 + dyRowStride, d2 = d1 + dyRowStride, d3 = d2 + dyRowStride
        let x1 = xs + tapStride, x2 = x1 + tapStride, x3 = x2 + tapStride, x4 = x3 + tapStride
        for v in 0..<vectors {
            let o = v * 16
            let c0 = load16(xs + o)
            let c1 = taps > 1 ? load16(x1 + o) : c0, c2 = taps > 2 ? load16(x2 + o) : c0
            let c3 = taps > 3 ? load16(x3 + o) : c0, c4 = taps > 4 ? load16(x4 + o) : c0
            let v0 = load16(d0 + o)
            s00 = s00.addingProduct(v0, c0)
            if taps > 1 { s01 = s01.addingProduct(v0, c1) }
            if taps > 2 { s02 = s02.addingProduct(v0, c2) }
            if taps > 3 { s03 = s03.addingProduct(v0, c3) }
            if taps > 4 { s04 = s04.addingProduct(v0, c4) }
            if channels > 1 {
                let v1 = load16(d1 + o)
                s10 = s10.addingProduct(v1, c0)
                if taps > 1 { s11 = s11.addingProduct(v1, c1) }
                if taps > 2 { s12 = s12.addingProduct(v1, c2) }
                if taps > 3 { s13 = s13.addingProduct(v1, c3) }
                if taps > 4 { s14 = s14.addingProduct(v1, c4) }
            }
            if channels > 2 {
                let v2 = load16(d2 + o)
                s20 = s20.addingProduct(v2, c0)
                if taps > 1 { s21 = s21.addingProduct(v2, c1) }
                if taps > 2 { s22 = s22.addingProduct(v2, c2) }
                if taps > 3 { s23 = s23.addingProduct(v2, c3) }
                if taps > 4 { s24 = s24.addingProduct(v2, c4) }
            }
            if channels > 3 {
                let v3 = load16(d3 + o)
                s30 = s30.addingProduct(v3, c0)
                if taps > 1 { s31 = s31.addingProduct(v3, c1) }
                if taps > 2 { s32 = s32.addingProduct(v3, c2) }
                if taps > 3 { s33 = s33.addingProduct(v3, c3) }
                if taps > 4 { s34 = s34.addingProduct(v3, c4) }
            }
        }
    }
    @inline(__always) func keep(_ v: SIMD16<Float>, _ r: Int, _ t: Int) { if channels > r && taps > t { store16(v, a(r, t)) } }
    keep(s00, 0, 0); keep(s01, 0, 1); keep(s02, 0, 2); keep(s03, 0, 3); keep(s04, 0, 4)
    keep(s10, 1, 0); keep(s11, 1, 1); keep(s12, 1, 2); keep(s13, 1, 3); keep(s14, 1, 4)
    keep(s20, 2, 0); keep(s21, 2, 1); keep(s22, 2, 2); keep(s23, 2, 3); keep(s24, 2, 4)
    keep(s30, 3, 0); keep(s31, 3, 1); keep(s32, 3, 2); keep(s33, 3, 3); keep(s34, 3, 4)
}
