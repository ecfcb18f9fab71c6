// The order in which training examples are visited: a fresh permutation each epoch, decided only by
// (seed, epoch), so a run can be repeated exactly and resumed at any epoch without replaying the
// earlier ones. The algorithm is fixed and documented here so that another implementation can
// reproduce the same orders:
//
// 1. SplitMix64 (Steele, Lea, Flood 2014) starts from state `seed ^ (epoch &* 0xD1B54A32D192ED03)`;
//    its first four outputs are the state of xoshiro256** (Blackman, Vigna 2018). The multiplier is
//    odd, so for one seed every epoch starts from a different state, and it is not SplitMix64's own
//    increment, so the epochs' seeding sequences are not shifted copies of each other.
// 2. A random integer below n is Lemire's multiply-shift: the high 64 bits of x * n for a 64-bit
//    output x, redrawing x while the low 64 bits are below (2^64 - n) mod n, which makes it unbiased.
// 3. The order is the identity 0..<count shuffled by Fisher-Yates from the back: for i from count-1
//    down to 1, swap element i with element j = random below i + 1.

/// SplitMix64: a 64-bit generator used to expand one seed into xoshiro256**'s 256-bit state.
public struct SplitMix64: Sendable {
    public var state: UInt64

    public init(state: UInt64) { self.state = state }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256**: a fast 64-bit generator with a 256-bit state, seeded through SplitMix64.
public struct Xoshiro256StarStar: Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// Seeds the state with the next four outputs of `seeder`.
    public init(seeder: inout SplitMix64) {
        s0 = seeder.next()
        s1 = seeder.next()
        s2 = seeder.next()
        s3 = seeder.next()
    }

    public mutating func next() -> UInt64 {
        let result = (s1 &* 5).rotatedLeft(by: 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s3.rotatedLeft(by: 45)
        return result
    }

    /// A uniformly distributed integer in 0..<bound (Lemire's method); `bound` must be positive.
    public mutating func next(below bound: UInt64) -> UInt64 {
        var product = next().multipliedFullWidth(by: bound)
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold {
                product = next().multipliedFullWidth(by: bound)
            }
        }
        return product.high
    }
}

extension UInt64 {
    fileprivate func rotatedLeft(by amount: UInt64) -> UInt64 { (self << amount) | (self >> (64 - amount)) }
}

/// Produces each epoch's visiting order from a seed.
public struct Shuffler: Sendable {
    public let seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    /// The generator for `epoch` (see the description at the top of this file).
    public func generator(epoch: Int) -> Xoshiro256StarStar {
        var seeder = SplitMix64(state: seed ^ (UInt64(truncatingIfNeeded: epoch) &* 0xD1B5_4A32_D192_ED03))
        return Xoshiro256StarStar(seeder: &seeder)
    }

    /// Writes the permutation of 0..<count for `epoch` into `order` (which holds `count` elements).
    /// Allocates nothing. `count` must be at most `Int32.max + 1`, so every index fits an Int32.
    public func permutation(epoch: Int, count: Int, into order: UnsafeMutablePointer<Int32>) {
        precondition(count >= 0 && count <= Int(Int32.max) + 1, "permutation count \(count) does not fit Int32 indices")
        for index in 0..<count { order[index] = Int32(truncatingIfNeeded: index) }
        var random = generator(epoch: epoch)
        Shuffler.shuffle(order, count: count, using: &random)
    }

    /// Fisher-Yates from the back over any `count` indices: for i from count-1 down to 1, swap element i
    /// with element `random.next(below: i + 1)`. Allocates nothing.
    public static func shuffle(_ order: UnsafeMutablePointer<Int32>, count: Int, using random: inout Xoshiro256StarStar) {
        guard count > 1 else { return }
        var i = count - 1
        while i > 0 {
            let j = Int(random.next(below: UInt64(i + 1)))
            let swapped = order[i]
            order[i] = order[j]
            order[j] = swapped
            i -= 1
        }
    }
}
