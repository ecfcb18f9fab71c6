#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif
import KernelInterface

// Batch normalization as PyTorch's BatchNorm1d / BatchNorm2d computes it, over [rows, channels,
// spatial] (spatial 1 after a linear layer). Work is split by channels; each channel's sums run in one
// fixed order (sixteen lanes over each row's run of values, then a fixed tree), so any split and any
// kernel set give the same bits.

/// Sum over the channel's values of f(values, offset, lanes); lanes past the run count as 0.
@inline(__always)
func channelSum(
    _ x: UnsafePointer<Float>, rows: Int, _ geometry: BatchNormGeometry, channel: Int,
    _ f: (SIMD16<Float>, Int, Int) -> SIMD16<Float>
) -> Float {
    let s = geometry.spatial, rowFloats = geometry.channels * s
    var a = SIMD16<Float>()
    for n in 0..<rows {
        let start = n * rowFloats + channel * s
        var i = 0
        while i < s {
            let lanes = min(16, s - i)
            a = a + f(loadLanes(x + start + i, lanes), start + i, lanes).replacing(with: 0, where: laneMask(lanes))
            i += 16
        }
    }
    return treeSum16(a)
}

/// Lanes at or beyond `lanes`.
@inline(__always)
func laneMask(_ lanes: Int) -> SIMDMask<SIMD16<Int32>> {
    SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) .>= SIMD16(repeating: Int32(lanes))
}

/// Writes f(offset, lanes) over the channel's values, sixteen at a time.
@inline(__always)
func channelMap(
    _ y: UnsafeMutablePointer<Float>, rows: Int, _ geometry: BatchNormGeometry, channel: Int,
    _ f: (Int, Int) -> SIMD16<Float>
) {
    let s = geometry.spatial, rowFloats = geometry.channels * s
    for n in 0..<rows {
        let start = n * rowFloats + channel * s
        var i = 0
        while i < s {
            let lanes = min(16, s - i)
            storeLanes(f(start + i, lanes), y + start + i, lanes)
            i += 16
        }
    }
}

public func batchNormTraining(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ weight: UnsafePointer<Float>?,
    _ bias: UnsafePointer<Float>?, _ runningMean: UnsafeMutablePointer<Float>, _ runningVar: UnsafeMutablePointer<Float>,
    _ savedMean: UnsafeMutablePointer<Float>, _ savedInvStd: UnsafeMutablePointer<Float>, _ rows: Int,
    _ geometry: BatchNormGeometry, _ first: Int, _ end: Int
) {
    let count = rows * geometry.spatial
    for c in first..<max(first, end) {
        let mean = channelSum(x, rows: rows, geometry, channel: c) { v, _, _ in v } / Float(count)
        let meanVector = SIMD16<Float>(repeating: mean)
        let variance = channelSum(x, rows: rows, geometry, channel: c) { v, _, _ in
            let d = v - meanVector
            return d * d
        } / Float(count)
        let invStd = 1 / sqrtf(variance + geometry.eps)
        savedMean[c] = mean
        savedInvStd[c] = invStd
        let scale = (weight?[c] ?? 1) * invStd, shift = bias?[c] ?? 0
        let scaleVector = SIMD16<Float>(repeating: scale), shiftVector = SIMD16<Float>(repeating: shift)
        channelMap(y, rows: rows, geometry, channel: c) { at, lanes in
            (loadLanes(x + at, lanes) - meanVector) * scaleVector + shiftVector
        }
        let m = geometry.momentum
        let unbiased = count > 1 ? variance * Float(count) / Float(count - 1) : variance
        runningMean[c] = (1 - m) * runningMean[c] + m * mean
        runningVar[c] = (1 - m) * runningVar[c] + m * unbiased
    }
}

public func batchNormEvaluation(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ weight: UnsafePointer<Float>?,
    _ bias: UnsafePointer<Float>?, _ runningMean: UnsafePointer<Float>, _ runningVar: UnsafePointer<Float>, _ rows: Int,
    _ geometry: BatchNormGeometry, _ first: Int, _ end: Int
) {
    for c in first..<max(first, end) {
        let invStd = 1 / sqrtf(runningVar[c] + geometry.eps)
        let meanVector = SIMD16<Float>(repeating: runningMean[c])
        let scaleVector = SIMD16<Float>(repeating: (weight?[c] ?? 1) * invStd)
        let shiftVector = SIMD16<Float>(repeating: bias?[c] ?? 0)
        channelMap(y, rows: rows, geometry, channel: c) { at, lanes in
            (loadLanes(x + at, lanes) - meanVector) * scaleVector + shiftVector
        }
    }
}

public func batchNormBackward(
    _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>?,
    _ savedMean: UnsafePointer<Float>, _ savedInvStd: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
    _ dweight: UnsafeMutablePointer<Float>?, _ dbias: UnsafeMutablePointer<Float>?, _ rows: Int,
    _ geometry: BatchNormGeometry, _ first: Int, _ end: Int
) {
    let count = Float(rows * geometry.spatial)
    for c in first..<max(first, end) {
        let meanVector = SIMD16<Float>(repeating: savedMean[c]), invStd = savedInvStd[c]
        let invStdVector = SIMD16<Float>(repeating: invStd)
        let sumDy = channelSum(dy, rows: rows, geometry, channel: c) { v, _, _ in v }
        // sum of dy * xhat, xhat = (x - mean) * invStd
        let sumDyXhat = channelSum(dy, rows: rows, geometry, channel: c) { v, at, lanes in
            v * ((loadLanes(x + at, lanes) - meanVector) * invStdVector)
        }
        dweight?[c] = sumDyXhat
        dbias?[c] = sumDy
        let scale = SIMD16<Float>(repeating: (weight?[c] ?? 1) * invStd)
        let meanDy = SIMD16<Float>(repeating: sumDy / count), meanDyXhat = SIMD16<Float>(repeating: sumDyXhat / count)
        channelMap(dx, rows: rows, geometry, channel: c) { at, lanes in
            let xhat = (loadLanes(x + at, lanes) - meanVector) * invStdVector
            return (loadLanes(dy + at, lanes) - meanDy - xhat * meanDyXhat) * scale
        }
    }
}

public func batchNormFold(
    _ layerWeight: UnsafePointer<Float>, _ layerBias: UnsafePointer<Float>?, _ weight: UnsafePointer<Float>?,
    _ bias: UnsafePointer<Float>?, _ runningMean: UnsafePointer<Float>, _ runningVar: UnsafePointer<Float>,
    _ foldedWeight: UnsafeMutablePointer<Float>, _ foldedBias: UnsafeMutablePointer<Float>, _ layout: FoldedWeightLayout,
    _ eps: Float
) {
    // Panel padding stays zero, as in the parameter block.
    if layout.panels { foldedWeight.update(repeating: 0, count: layout.storedFloats) }
    for c in 0..<layout.channels {
        let scale = (weight?[c] ?? 1) * (1 / sqrtf(runningVar[c] + eps))
        foldedBias[c] = ((layerBias?[c] ?? 0) - runningMean[c]) * scale + (bias?[c] ?? 0)
        for i in 0..<layout.perChannel {
            let at = layout.offset(channel: c, index: i)
            foldedWeight[at] = layerWeight[at] * scale
        }
    }
}
