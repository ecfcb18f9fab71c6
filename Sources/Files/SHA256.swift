import CSHA256

// SHA-256 as specified in FIPS 180-4, written here so mlpc can verify datasets without a crypto
// package. The block compression runs on the CPU's SHA instructions when it has them (the CSHA256
// target, x86 SHA extensions: about ten times faster) and otherwise in the portable Swift below, which
// works on whole 64-byte blocks straight from the caller's memory with wrapping UInt32 arithmetic.
// Padding and length bookkeeping are here, shared by both.

/// A SHA-256 digest: 32 bytes, shown as 64 lowercase hexadecimal digits.
public struct SHA256Digest: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// The digest with these 32 bytes; nil if there are not exactly 32.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        self.bytes = bytes
    }

    /// Parses 64 hexadecimal digits (either case); nil for anything else.
    public init?(hex: String) {
        let digits = Array(hex.utf8)
        guard digits.count == 64 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity(32)
        var index = 0
        while index < 64 {
            guard let high = Self.nibble(digits[index]), let low = Self.nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        self.bytes = bytes
    }

    public var hex: String {
        let alphabet = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(64)
        for byte in bytes {
            text.append(alphabet[Int(byte >> 4)])
            text.append(alphabet[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    public var description: String { hex }

    private static func nibble(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return character - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// An incremental SHA-256 computation: feed bytes with `update` in any number of pieces, then call
/// `finalize` once.
public struct SHA256: Sendable {
    /// Where the compression function runs.
    enum Implementation: Sendable {
        /// The CPU's SHA-256 instructions, through the CSHA256 target.
        case hardware
        /// The Swift compression function below; runs on any CPU.
        case portable

        /// True when this CPU has the instructions `.hardware` needs.
        static var hardwareAvailable: Bool { csha256_hardware_available() != 0 }
        /// What `SHA256()` uses: the hardware when there is one.
        static var fastest: Implementation { hardwareAvailable ? .hardware : .portable }
    }

    let implementation: Implementation
    private var state: [UInt32] = [
        0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19,
    ]
    /// Bytes of an incomplete block carried over to the next update (fewer than 64).
    private var pending: [UInt8] = []
    private var messageLength: UInt64 = 0

    public init() {
        implementation = .fastest
    }

    /// A hasher that uses `implementation`; nil for `.hardware` on a CPU without SHA instructions.
    /// Lets tests compare the two paths on one machine.
    init?(implementation: Implementation) {
        if implementation == .hardware && !Implementation.hardwareAvailable { return nil }
        self.implementation = implementation
    }

    /// The digest of `bytes` in one call.
    public static func hash(_ bytes: [UInt8]) -> SHA256Digest {
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalize()
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        messageLength &+= UInt64(bytes.count)
        var offset = 0
        if !pending.isEmpty {
            let take = min(64 - pending.count, bytes.count)
            pending.append(contentsOf: UnsafeRawBufferPointer(start: base, count: take))
            offset = take
            guard pending.count == 64 else { return }
            pending.withUnsafeBytes { Self.compress(implementation, state: &state, blocks: $0.baseAddress!, blockCount: 1) }
            pending.removeAll(keepingCapacity: true)
        }
        let blockCount = (bytes.count - offset) / 64
        if blockCount > 0 {
            Self.compress(implementation, state: &state, blocks: base + offset, blockCount: blockCount)
            offset += blockCount * 64
        }
        if offset < bytes.count {
            pending.append(contentsOf: UnsafeRawBufferPointer(start: base + offset, count: bytes.count - offset))
        }
    }

    /// Pads the message (a 1 bit, zeros, the 64-bit big-endian bit length) and returns the digest.
    public mutating func finalize() -> SHA256Digest {
        let bitLength = messageLength &* 8
        var tail = pending
        tail.append(0x80)
        while tail.count % 64 != 56 { tail.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
        tail.withUnsafeBytes { Self.compress(implementation, state: &state, blocks: $0.baseAddress!, blockCount: tail.count / 64) }
        pending.removeAll()
        var digest = [UInt8]()
        digest.reserveCapacity(32)
        for word in state {
            digest += [UInt8(word >> 24), UInt8((word >> 16) & 0xFF), UInt8((word >> 8) & 0xFF), UInt8(word & 0xFF)]
        }
        // 32 bytes by construction: 8 state words of 4 bytes.
        return SHA256Digest(bytes: digest)!
    }

    /// FIPS 180-4's round constants, from the C target (one table for both implementations).
    private static let roundConstants: [UInt32] = withUnsafeBytes(of: csha256_round_constants) {
        Array($0.bindMemory(to: UInt32.self))
    }

    @inline(__always)
    private static func rotateRight(_ x: UInt32, _ n: UInt32) -> UInt32 { (x &>> n) | (x &<< (32 &- n)) }

    /// One round: `h` receives the new `a` and `d` the new `e`; the caller rotates the names.
    @inline(__always)
    private static func round(
        _ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: inout UInt32, _ e: UInt32, _ f: UInt32, _ g: UInt32, _ h: inout UInt32,
        _ constantPlusWord: UInt32
    ) {
        let bigSigma1 = rotateRight(e, 6) ^ rotateRight(e, 11) ^ rotateRight(e, 25)
        let choice = (e & f) ^ (~e & g)
        let t1 = h &+ bigSigma1 &+ choice &+ constantPlusWord
        let bigSigma0 = rotateRight(a, 2) ^ rotateRight(a, 13) ^ rotateRight(a, 22)
        let majority = (a & b) ^ (a & c) ^ (b & c)
        d = d &+ t1
        h = t1 &+ bigSigma0 &+ majority
    }

    /// Runs the compression function over `blockCount` consecutive 64-byte blocks at `blocks`.
    private static func compress(
        _ implementation: Implementation, state: inout [UInt32], blocks: UnsafeRawPointer, blockCount: Int
    ) {
        switch implementation {
        case .hardware:
            state.withUnsafeMutableBufferPointer { words in
                // 8 words: the state array is never resized.
                csha256_compress_blocks(words.baseAddress!, blocks.assumingMemoryBound(to: UInt8.self), blockCount)
            }
        case .portable:
            compressPortable(state: &state, blocks: blocks, blockCount: blockCount)
        }
    }

    private static func compressPortable(state: inout [UInt32], blocks: UnsafeRawPointer, blockCount: Int) {
        var h0 = state[0], h1 = state[1], h2 = state[2], h3 = state[3]
        var h4 = state[4], h5 = state[5], h6 = state[6], h7 = state[7]
        roundConstants.withUnsafeBufferPointer { constants in
            let k = constants.baseAddress!
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { schedule in
                let w = schedule.baseAddress!
                for block in 0..<blockCount {
                    let bytes = blocks + block * 64
                    for t in 0..<16 {
                        w[t] = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: t * 4, as: UInt32.self))
                    }
                    for t in 16..<64 {
                        let x = w[t - 15], y = w[t - 2]
                        let sigma0 = rotateRight(x, 7) ^ rotateRight(x, 18) ^ (x >> 3)
                        let sigma1 = rotateRight(y, 17) ^ rotateRight(y, 19) ^ (y >> 10)
                        w[t] = sigma1 &+ w[t - 7] &+ sigma0 &+ w[t - 16]
                    }
                    var a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7
                    // Eight rounds per iteration with the roles of the variables rotated instead of
                    // the values moved, so the compiler keeps all eight in registers.
                    var t = 0
                    while t < 64 {
                        round(a, b, c, &d, e, f, g, &h, k[t] &+ w[t])
                        round(h, a, b, &c, d, e, f, &g, k[t + 1] &+ w[t + 1])
                        round(g, h, a, &b, c, d, e, &f, k[t + 2] &+ w[t + 2])
                        round(f, g, h, &a, b, c, d, &e, k[t + 3] &+ w[t + 3])
                        round(e, f, g, &h, a, b, c, &d, k[t + 4] &+ w[t + 4])
                        round(d, e, f, &g, h, a, b, &c, k[t + 5] &+ w[t + 5])
                        round(c, d, e, &f, g, h, a, &b, k[t + 6] &+ w[t + 6])
                        round(b, c, d, &e, f, g, h, &a, k[t + 7] &+ w[t + 7])
                        t += 8
                    }
                    h0 = h0 &+ a
                    h1 = h1 &+ b
                    h2 = h2 &+ c
                    h3 = h3 &+ d
                    h4 = h4 &+ e
                    h5 = h5 &+ f
                    h6 = h6 &+ g
                    h7 = h7 &+ h
                }
            }
        }
        state = [h0, h1, h2, h3, h4, h5, h6, h7]
    }
}
