import KernelInterface

/// A counter-based random number: the same (seed, step, index) always gives the same bits, so the
/// mask does not depend on how the elements are split among threads. Two rounds of the SplitMix64
/// finalizer over the mixed inputs.
@inline(__always)
func dropoutHash(_ seed: UInt64, _ step: UInt64, _ index: UInt64) -> UInt64 {
    var z = seed &+ 0x9E37_79B9_7F4A_7C15 &* (step &+ 1)
    z ^= index &* 0xD1B5_4A32_D192_ED03
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    z ^= z >> 31
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// Inverted dropout: element i is kept when its uniform draw in [0, 1) is at least p, and kept
/// elements are scaled by 1/(1-p) so the expected output equals the input. p >= 1 drops everything.
public func dropoutForward(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ mask: UnsafeMutablePointer<Float>,
    _ count: Int, _ p: Float, _ seed: UInt64, _ step: UInt64, _ part: Int, _ parts: Int
) {
    let range = partRange(count: count, granule: 16, part: part, parts: parts)
    let scale: Float = p < 1 ? 1 / (1 - p) : 0
    // Compare 24-bit integers: draw < p exactly when (draw * 2^24) < p * 2^24.
    let threshold = UInt64((Double(max(0, min(p, 1))) * 16_777_216).rounded(.up))
    for i in range {
        let draw = dropoutHash(seed, step, UInt64(i)) >> 40
        let m: Float = draw >= threshold ? scale : 0
        mask[i] = m
        y[i] = x[i] * m
    }
}

public func dropoutBackward(
    _ dy: UnsafePointer<Float>, _ mask: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
    _ count: Int, _ part: Int, _ parts: Int
) {
    let range = partRange(count: count, granule: 16, part: part, parts: parts)
    var i = range.lowerBound
    while i + 16 <= range.upperBound {
        store16(load16(dy + i) * load16(mask + i), dx + i)
        i += 16
    }
    while i < range.upperBound {
        dx[i] = dy[i] * mask[i]
        i += 1
    }
}
