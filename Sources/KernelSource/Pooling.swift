import KernelInterface

// Max and average pooling over NCHW planes, as PyTorch's max_pool2d and avg_pool2d (count_include_pad)
// compute them. Work is split by planes (one channel of one sample), so any split gives the same bits.

/// The window of output (oy, ox): its clipped bounds and, for the average, PyTorch's divisor (the
/// window's size inside the padded input).
@inline(__always)
func poolWindow(_ g: PoolGeometry, _ oy: Int, _ ox: Int) -> (h0: Int, h1: Int, w0: Int, w1: Int, divisor: Int) {
    var h0 = oy * g.strideHeight - g.padTop, w0 = ox * g.strideWidth - g.padLeft
    var h1 = min(h0 + g.kernelHeight, g.inHeight + g.padTop), w1 = min(w0 + g.kernelWidth, g.inWidth + g.padLeft)
    let divisor = (h1 - h0) * (w1 - w0)
    h0 = max(h0, 0)
    w0 = max(w0, 0)
    h1 = min(h1, g.inHeight)
    w1 = min(w1, g.inWidth)
    return (h0, h1, w0, w1, divisor)
}

public func pool2dForward(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ indices: UnsafeMutablePointer<Int32>?,
    _ g: PoolGeometry, _ isMax: Bool, _ first: Int, _ end: Int
) {
    if isMax && g.kernelHeight == 2 && g.kernelWidth == 2 && g.strideHeight == 2 && g.strideWidth == 2 && g.padTop == 0
        && g.padLeft == 0 && 2 * g.outHeight <= g.inHeight && 2 * g.outWidth <= g.inWidth
    {
        maxPool2x2(x, y, indices, g, first, end)
        return
    }
    for plane in first..<max(first, end) {
        let input = x + plane * g.inPixels, output = y + plane * g.outPixels
        for oy in 0..<g.outHeight {
            for ox in 0..<g.outWidth {
                let window = poolWindow(g, oy, ox)
                let o = oy * g.outWidth + ox
                if isMax {
                    var best = -Float.infinity
                    var bestIndex = window.h0 * g.inWidth + window.w0
                    for ih in window.h0..<max(window.h0, window.h1) {
                        for iw in window.w0..<max(window.w0, window.w1) {
                            let value = input[ih * g.inWidth + iw]
                            // PyTorch's rule: a larger value or a NaN takes the place.
                            if value > best || value.isNaN {
                                best = value
                                bestIndex = ih * g.inWidth + iw
                            }
                        }
                    }
                    output[o] = best
                    indices?[plane * g.outPixels + o] = Int32(bestIndex)
                } else {
                    var sum: Float = 0
                    for ih in window.h0..<max(window.h0, window.h1) {
                        for iw in window.w0..<max(window.w0, window.w1) { sum += input[ih * g.inWidth + iw] }
                    }
                    output[o] = sum / Float(window.divisor)
                }
            }
        }
    }
}

public func pool2dBackward(
    _ dy: UnsafePointer<Float>, _ indices: UnsafePointer<Int32>?, _ dx: UnsafeMutablePointer<Float>, _ g: PoolGeometry,
    _ first: Int, _ end: Int
) {
    for plane in first..<max(first, end) {
        let gradient = dx + plane * g.inPixels, output = dy + plane * g.outPixels
        gradient.update(repeating: 0, count: g.inPixels)
        if let indices {
            let planeIndices = indices + plane * g.outPixels
            for o in 0..<g.outPixels { gradient[Int(planeIndices[o])] += output[o] }
            continue
        }
        for oy in 0..<g.outHeight {
            for ox in 0..<g.outWidth {
                let window = poolWindow(g, oy, ox)
                let share = output[oy * g.outWidth + ox] / Float(window.divisor)
                for ih in window.h0..<max(window.h0, window.h1) {
                    for iw in window.w0..<max(window.w0, window.w1) { gradient[ih * g.inWidth + iw] += share }
                }
            }
        }
    }
}

/// The common 2x2 / 2 max pool whose windows all lie inside the input: the same rule as the general loop
/// (row-major window order, a larger value or a NaN takes the place), without its bounds.
@inline(__always)
func maxPool2x2(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ indices: UnsafeMutablePointer<Int32>?, _ g: PoolGeometry,
    _ first: Int, _ end: Int
) {
    let w = g.inWidth
    for plane in first..<max(first, end) {
        let input = x + plane * g.inPixels, output = y + plane * g.outPixels
        let planeIndices = indices.map { $0 + plane * g.outPixels }
        for oy in 0..<g.outHeight {
            let top = input + 2 * oy * w, bottom = top + w
            for ox in 0..<g.outWidth {
                // Selects rather than branches: which value wins is data, and mispredicted jumps
                // cost more than the comparisons.
                let a0 = 2 * oy * w + 2 * ox
                var best = top[2 * ox], at = a0
                let v1 = top[2 * ox + 1], v2 = bottom[2 * ox], v3 = bottom[2 * ox + 1]
                let t1 = v1 > best || v1 != v1
                best = t1 ? v1 : best
                at = t1 ? a0 + 1 : at
                let t2 = v2 > best || v2 != v2
                best = t2 ? v2 : best
                at = t2 ? a0 + w : at
                let t3 = v3 > best || v3 != v3
                best = t3 ? v3 : best
                at = t3 ? a0 + w + 1 : at
                output[oy * g.outWidth + ox] = best
                planeIndices?[oy * g.outWidth + ox] = Int32(at)
            }
        }
    }
}
