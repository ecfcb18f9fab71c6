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
                            if value > best || value.isNaN {
                                best = value
                                bestIndex = ih * g.inWidth + iw
                                if value.isNaN { break }
                            }
                        }
                        if best.isNaN { break }
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
