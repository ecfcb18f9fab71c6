import KernelInterface

// Max and average pooling over NCHW planes, as PyTorch's max_pool2d (dilation), avg_pool2d
// (count_include_pad either way) and adaptive_avg_pool2d compute them. Work is split by planes (one
// channel of one sample), so any split gives the same bits.

/// The window of output (oy, ox): its taps are rows h0, h0 + dilation, ... below h1 and columns w0, ...
/// below w1, all inside the input; and the average's divisor (PyTorch's: the window's size inside the
/// padded input, or with count_include_pad false the taps it has).
@inline(__always)
func poolWindow(_ g: PoolGeometry, _ oy: Int, _ ox: Int) -> (h0: Int, h1: Int, w0: Int, w1: Int, divisor: Int) {
    if g.adaptive {
        let h0 = oy * g.inHeight / g.outHeight, h1 = ((oy + 1) * g.inHeight + g.outHeight - 1) / g.outHeight
        let w0 = ox * g.inWidth / g.outWidth, w1 = ((ox + 1) * g.inWidth + g.outWidth - 1) / g.outWidth
        return (h0, h1, w0, w1, (h1 - h0) * (w1 - w0))
    }
    let hStart = oy * g.strideHeight - g.padTop, wStart = ox * g.strideWidth - g.padLeft
    let hEnd = min(hStart + (g.kernelHeight - 1) * g.dilationHeight + 1, g.inHeight + g.padTop)
    let wEnd = min(wStart + (g.kernelWidth - 1) * g.dilationWidth + 1, g.inWidth + g.padLeft)
    // The first tap inside the input.
    let h0 = hStart < 0 ? hStart + (-hStart + g.dilationHeight - 1) / g.dilationHeight * g.dilationHeight : hStart
    let w0 = wStart < 0 ? wStart + (-wStart + g.dilationWidth - 1) / g.dilationWidth * g.dilationWidth : wStart
    let h1 = min(hEnd, g.inHeight), w1 = min(wEnd, g.inWidth)
    let divisor = g.countIncludePad ? (hEnd - hStart) * (wEnd - wStart) : max(0, h1 - h0) * max(0, w1 - w0)
    return (h0, h1, w0, w1, divisor)
}

public func pool2dForward(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ indices: UnsafeMutablePointer<Int32>?,
    _ g: PoolGeometry, _ isMax: Bool, _ first: Int, _ end: Int
) {
    if g.isInside2x2 {
        pool2x2Forward(x, y, indices, g, isMax, first, end)
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
                    for ih in stride(from: window.h0, to: window.h1, by: g.dilationHeight) {
                        for iw in stride(from: window.w0, to: window.w1, by: g.dilationWidth) {
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

/// The max pool's input gradient followed by the backward pass of the ReLU whose output the pool read,
/// per plane: dx = pool gradient x (1 where the ReLU output is above 0, else 0), the same bits as
/// `pool2dBackward` then `activationBackward`. `reluValues` is the ReLU output, or, with `pooled`
/// (windows that do not overlap: `isInside2x2`), the pool's output: each input then gets at most one
/// window's gradient, 0 + dy at the argmax, whose ReLU output is the window's pooled value, and 0 x
/// either derivative is the 0 elsewhere, so the pass reads a value per window instead of per input.
public func maxPool2dReluBackward(
    _ dy: UnsafePointer<Float>, _ indices: UnsafePointer<Int32>, _ reluValues: UnsafePointer<Float>, _ pooled: Bool,
    _ dx: UnsafeMutablePointer<Float>, _ g: PoolGeometry, _ first: Int, _ end: Int
) {
    if pooled {
        precondition(g.isInside2x2, "maxPool2dReluBackward reads pooled values only for 2x2 windows inside the input")
        for plane in first..<max(first, end) {
            let gradient = dx + plane * g.inPixels, output = dy + plane * g.outPixels
            let winners = indices + plane * g.outPixels, values = reluValues + plane * g.outPixels
            gradient.update(repeating: 0, count: g.inPixels)
            for o in 0..<g.outPixels { gradient[Int(winners[o])] = (0 + output[o]) * (values[o] > 0 ? 1 : 0) }
        }
        return
    }
    for plane in first..<max(first, end) {
        // The plane's gradient is still in the cache when the derivative multiplies it.
        pool2dBackward(dy, indices, dx, g, plane, plane + 1)
        let gradient = dx + plane * g.inPixels
        activationBackward(gradient, nil, reluValues + plane * g.inPixels, gradient, g.inPixels, .relu, 0, 0, 1)
    }
}
