import KernelInterface

// The forward pass of the common 2x2 / 2 pool whose windows all lie inside the input (no padding or
// dilation, no window past an edge), eight windows a vector: sixteen floats of an input row split into
// their even and odd columns (a shuffle) are the left and right values of eight windows.
//
// Bits as the general loop's: the max compares top-left, top-right, bottom-left, bottom-right in that
// order under the rule "a larger value or a NaN takes the place". Taken as max(top pair) against
// max(bottom pair), where the bottom wins only when larger or NaN, the same element wins: ties keep the
// earlier one, and the last NaN in window order wins either way. The average adds 0 + tl + tr + bl + br
// in that order and divides by 4, as the loop does.
//
// The backward pass stays the general loop's zeroing and scatter: it is bound by the stores to the input
// gradient, and a vectorized form (four selects and two interleaves per eight windows) measured no
// faster on wide rows and slower on narrow ones.

/// Eight windows from sixteen floats of their top and bottom rows: the pooled values and (max) the
/// index in the plane of each one's winner; `topLeft` is the first window's top-left index.
@inline(__always)
func pool8(_ top: SIMD16<Float>, _ bottom: SIMD16<Float>, isMax: Bool, topLeft: Int, width: Int) -> (SIMD8<Float>, SIMD8<Int32>) {
    let tl = top.evenHalf, tr = top.oddHalf, bl = bottom.evenHalf, br = bottom.oddHalf
    guard isMax else { return ((SIMD8<Float>() + tl + tr + bl + br) / 4, SIMD8<Int32>()) }
    let topWins = (tr .> tl) .| (tr .!= tr)
    let topBest = tl.replacing(with: tr, where: topWins)
    let bottomWins = (br .> bl) .| (br .!= br)
    let bottomBest = bl.replacing(with: br, where: bottomWins)
    let lowerWins = (bottomBest .> topBest) .| (bottomBest .!= bottomBest)
    let corner = SIMD8<Int32>(0, 2, 4, 6, 8, 10, 12, 14) &+ Int32(topLeft)
    let one = SIMD8<Int32>(repeating: 1), zero = SIMD8<Int32>()
    let topAt = corner &+ zero.replacing(with: one, where: topWins)
    let bottomAt = corner &+ Int32(width) &+ zero.replacing(with: one, where: bottomWins)
    return (topBest.replacing(with: bottomBest, where: lowerWins), topAt.replacing(with: bottomAt, where: lowerWins))
}

@inline(__always)
func store8<T: SIMDScalar>(_ v: SIMD8<T>, _ p: UnsafeMutablePointer<T>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<T>.self)
}

func pool2x2Forward(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ indices: UnsafeMutablePointer<Int32>?, _ g: PoolGeometry,
    _ isMax: Bool, _ first: Int, _ end: Int
) {
    // Separate functions: one loop nest each keeps its values in registers.
    if g.outWidth >= 8 {
        pool2x2WideRows(x, y, indices, g, isMax, first, end)
    } else {
        pool2x2NarrowRows(x, y, indices, g, isMax, first, end)
    }
}

/// Rows of eight outputs or more, eight at a time; a row's last eight end at its end (outputs the eight
/// before them already wrote are written again, with the same values), so every load and store is whole.
@inline(never)
func pool2x2WideRows(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ indices: UnsafeMutablePointer<Int32>?, _ g: PoolGeometry,
    _ isMax: Bool, _ first: Int, _ end: Int
) {
    let w = g.inWidth
    for plane in first..<max(first, end) {
        let input = x + plane * g.inPixels, output = y + plane * g.outPixels
        let planeIndices = indices.map { $0 + plane * g.outPixels }
        for oy in 0..<g.outHeight {
            var ox = 0
            while ox < g.outWidth {
                let column = min(ox, g.outWidth - 8)
                let topLeft = 2 * oy * w + 2 * column
                let (pooled, at) = pool8(load16(input + topLeft), load16(input + topLeft + w), isMax: isMax, topLeft: topLeft, width: w)
                store8(pooled, output + oy * g.outWidth + column)
                if let planeIndices { store8(at, planeIndices + oy * g.outWidth + column) }
                ox += 8
            }
        }
    }
}

/// Rows of fewer than eight outputs, one a vector. Whole loads and stores run past the row into the
/// plane's next rows where the plane has them (the lanes past the row are not used; the outputs they
/// overwrite are the next row's, written after); the plane's last rows go a value at a time.
@inline(never)
func pool2x2NarrowRows(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ indices: UnsafeMutablePointer<Int32>?, _ g: PoolGeometry,
    _ isMax: Bool, _ first: Int, _ end: Int
) {
    let w = g.inWidth
    for plane in first..<max(first, end) {
        let input = x + plane * g.inPixels, output = y + plane * g.outPixels
        let planeIndices = indices.map { $0 + plane * g.outPixels }
        for oy in 0..<g.outHeight {
            let topLeft = 2 * oy * w
            var top: SIMD16<Float>, bottom: SIMD16<Float>
            if topLeft + w + 16 <= g.inPixels {
                top = load16(input + topLeft)
                bottom = load16(input + topLeft + w)
            } else {
                top = SIMD16<Float>()
                bottom = SIMD16<Float>()
                for i in 0..<2 * g.outWidth {
                    top[i] = input[topLeft + i]
                    bottom[i] = input[topLeft + w + i]
                }
            }
            let (pooled, at) = pool8(top, bottom, isMax: isMax, topLeft: topLeft, width: w)
            let o = oy * g.outWidth
            if o + 8 <= g.outPixels {
                store8(pooled, output + o)
                if let planeIndices { store8(at, planeIndices + o) }
            } else {
                for i in 0..<g.outWidth {
                    output[o + i] = pooled[i]
                    planeIndices?[o + i] = at[i]
                }
            }
        }
    }
}
