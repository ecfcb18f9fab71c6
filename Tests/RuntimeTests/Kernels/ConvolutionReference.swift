import KernelInterface

// Plain, slow, plainly correct twins of the convolution, pooling and batch norm kernels, in Double,
// written from PyTorch's definitions (NCHW, weight [out, in/groups, kh, kw]).

/// The input element a (sample, channel, output row/col, kernel row/col) reads, or nil in the padding.
private func inputIndex(_ g: ConvGeometry, n: Int, c: Int, oy: Int, ox: Int, ki: Int, kj: Int) -> Int? {
    let ih = oy * g.strideHeight - g.padTop + ki * g.dilationHeight
    let iw = ox * g.strideWidth - g.padLeft + kj * g.dilationWidth
    guard ih >= 0, ih < g.inHeight, iw >= 0, iw < g.inWidth else { return nil }
    return ((n * g.inChannels + c) * g.inHeight + ih) * g.inWidth + iw
}

/// Calls body(outputIndex, inputIndex, weightIndex) for every product of the convolution.
func forEachConvProduct(_ g: ConvGeometry, batch: Int, _ body: (Int, Int, Int) -> Void) {
    let cg = g.groupInChannels, og = g.groupOutChannels
    for n in 0..<batch {
        for oc in 0..<g.outChannels {
            let group = oc / og
            for oy in 0..<g.outHeight {
                for ox in 0..<g.outWidth {
                    let out = ((n * g.outChannels + oc) * g.outHeight + oy) * g.outWidth + ox
                    for ci in 0..<cg {
                        for ki in 0..<g.kernelHeight {
                            for kj in 0..<g.kernelWidth {
                                guard let i = inputIndex(g, n: n, c: group * cg + ci, oy: oy, ox: ox, ki: ki, kj: kj) else { continue }
                                body(out, i, ((oc * cg + ci) * g.kernelHeight + ki) * g.kernelWidth + kj)
                            }
                        }
                    }
                }
            }
        }
    }
}

func referenceConv2d(_ x: [Double], _ w: [Double], _ b: [Double]?, _ g: ConvGeometry, batch: Int) -> [Double] {
    var y = [Double](repeating: 0, count: batch * g.outputFloats)
    forEachConvProduct(g, batch: batch) { o, i, k in y[o] += x[i] * w[k] }
    if let b {
        for index in y.indices { y[index] += b[(index / g.outPixels) % g.outChannels] }
    }
    return y
}

func referenceConv2dGradients(_ x: [Double], _ w: [Double], _ dy: [Double], _ g: ConvGeometry, batch: Int)
    -> (dx: [Double], dw: [Double], db: [Double])
{
    var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
    var db = [Double](repeating: 0, count: g.outChannels)
    forEachConvProduct(g, batch: batch) { o, i, k in
        dx[i] += dy[o] * w[k]
        dw[k] += dy[o] * x[i]
    }
    for index in dy.indices { db[(index / g.outPixels) % g.outChannels] += dy[index] }
    return (dx, dw, db)
}

/// PyTorch's pooling: windows at index * stride - pad, clipped; the average divides by the window's
/// size within the padded input; the max takes the first largest (NaN wins).
func referencePool(_ x: [Double], _ g: PoolGeometry, planes: Int, isMax: Bool) -> (y: [Double], argmax: [Int]) {
    var y: [Double] = [], argmax: [Int] = []
    // The input rows (or columns) a window reads, and the size its average divides by.
    func taps(_ o: Int, input: Int, output: Int, kernel: Int, stride: Int, pad: Int, dilation: Int) -> (taps: [Int], size: Int) {
        if g.adaptive {
            let start = Int((Double(o * input) / Double(output)).rounded(.down))
            let end = Int((Double((o + 1) * input) / Double(output)).rounded(.up))
            return (Array(start..<end), end - start)
        }
        let start = o * stride - pad
        let all = (0..<kernel).map { start + $0 * dilation }
        let inside = all.filter { $0 >= 0 && $0 < input }
        // PyTorch's count_include_pad counts the window inside the padded input (not past it).
        let padded = all.filter { $0 < input + pad }.count
        return (inside, g.countIncludePad ? padded : inside.count)
    }
    for plane in 0..<planes {
        for oy in 0..<g.outHeight {
            for ox in 0..<g.outWidth {
                let rows = taps(oy, input: g.inHeight, output: g.outHeight, kernel: g.kernelHeight, stride: g.strideHeight, pad: g.padTop, dilation: g.dilationHeight)
                let columns = taps(ox, input: g.inWidth, output: g.outWidth, kernel: g.kernelWidth, stride: g.strideWidth, pad: g.padLeft, dilation: g.dilationWidth)
                var best = -Double.infinity, bestIndex = rows.taps[0] * g.inWidth + columns.taps[0], sum = 0.0
                for ih in rows.taps {
                    for iw in columns.taps {
                        let v = x[plane * g.inPixels + ih * g.inWidth + iw]
                        sum += v
                        if v > best {
                            best = v
                            bestIndex = ih * g.inWidth + iw
                        }
                    }
                }
                y.append(isMax ? best : sum / Double(rows.size * columns.size))
                argmax.append(bestIndex)
            }
        }
    }
    return (y, argmax)
}

/// Batch norm in training over [rows, channels, spatial]: (y, the batch means, biased variances).
func referenceBatchNorm(
    _ x: [Double], weight: [Double]?, bias: [Double]?, rows: Int, _ g: BatchNormGeometry
) -> (y: [Double], mean: [Double], variance: [Double]) {
    var y = x, means: [Double] = [], variances: [Double] = []
    let count = Double(rows * g.spatial)
    for c in 0..<g.channels {
        let indices = (0..<rows).flatMap { n in (0..<g.spatial).map { (n * g.channels + c) * g.spatial + $0 } }
        let mean = indices.reduce(0) { $0 + x[$1] } / count
        let variance = indices.reduce(0) { $0 + (x[$1] - mean) * (x[$1] - mean) } / count
        for i in indices { y[i] = (x[i] - mean) / (variance + Double(g.eps)).squareRoot() * (weight?[c] ?? 1) + (bias?[c] ?? 0) }
        means.append(mean)
        variances.append(variance)
    }
    return (y, means, variances)
}
