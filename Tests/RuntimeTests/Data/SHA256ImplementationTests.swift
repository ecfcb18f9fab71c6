import Foundation
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

/// The SHA-256 hardware path (CPU SHA instructions) and the portable Swift path: both give the FIPS
/// 180-4 digests, and the same digest as each other for any input cut into any pieces.
final class SHA256ImplementationTests: XCTestCase {
    /// A hasher for `implementation`; fails the test when the hardware path is asked for but is
    /// missing on a CPU that /proc/cpuinfo says has the SHA extensions (so a broken CPUID check
    /// cannot leave the hardware path untested), and skips only on CPUs that really lack them.
    private func hasher(_ implementation: SHA256.Implementation) throws -> SHA256 {
        if implementation == .hardware {
            try requireHardware()
        }
        return try XCTUnwrap(SHA256(implementation: implementation))
    }

    private static let cpuInfoListsSHA: Bool = {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        return cpuinfo.split(separator: "\n").contains { line in
            line.hasPrefix("flags") && line.split(separator: " ").contains("sha_ni")
        }
    }()

    private func requireHardware() throws {
        if Self.cpuInfoListsSHA {
            XCTAssertTrue(SHA256.Implementation.hardwareAvailable, "/proc/cpuinfo lists sha_ni but the CPUID check says no")
        }
        guard SHA256.Implementation.hardwareAvailable else {
            throw XCTSkip("this CPU has no SHA-256 instructions")
        }
    }

    private func digest(_ implementation: SHA256.Implementation, _ message: [UInt8]) throws -> String {
        var hasher = try hasher(implementation)
        hasher.update(message)
        return hasher.finalize().hex
    }

    /// The digest of `message` fed in pieces of random sizes (0 up to `maximumPiece` bytes).
    private func digestInPieces(
        _ implementation: SHA256.Implementation, _ message: [UInt8], maximumPiece: Int, generator: inout SplitMix64
    ) throws -> SHA256Digest {
        var hasher = try hasher(implementation)
        var start = 0
        while start < message.count {
            let size = min(Int(generator.next() % UInt64(maximumPiece + 1)), message.count - start)
            message.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[start..<(start + size)])) }
            start += size
        }
        return hasher.finalize()
    }

    private func randomBytes(_ count: Int, _ generator: inout SplitMix64) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
    }

    func testHardwareIsAvailableWhenCPUInfoListsSHA() throws {
        try requireHardware()
        XCTAssertNotNil(SHA256(implementation: .hardware))
        XCTAssertEqual(SHA256().implementation, .hardware, "SHA256() must take the hardware path when there is one")
    }

    /// FIPS 180-4's examples: "abc", the 448-bit two-block message, and one million 'a'.
    private func assertFIPSDigests(_ implementation: SHA256.Implementation, line: UInt = #line) throws {
        let examples: [([UInt8], String)] = [
            (Array("abc".utf8), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8),
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
            ([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000),
             "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
        ]
        for (message, expected) in examples {
            XCTAssertEqual(try digest(implementation, message), expected, "\(implementation), \(message.count) bytes", line: line)
        }
    }

    func testHardwareGivesTheFIPSDigests() throws {
        try assertFIPSDigests(.hardware)
    }

    func testPortableGivesTheFIPSDigests() throws {
        try assertFIPSDigests(.portable)
    }

    func testHardwareAndPortableAgreeOnEveryLengthUpTo300Bytes() throws {
        var generator = SplitMix64(state: 7)
        for length in 0...300 {
            let message = randomBytes(length, &generator)
            let hardware = try digestInPieces(.hardware, message, maximumPiece: 70, generator: &generator)
            let portable = try digestInPieces(.portable, message, maximumPiece: 70, generator: &generator)
            XCTAssertEqual(hardware, portable, "length \(length)")
            // A message cut differently still has one digest.
            XCTAssertEqual(hardware.hex, try digest(.portable, message), "length \(length)")
        }
    }

    func testHardwareAndPortableAgreeOnMegabytesFedInRandomPieces() throws {
        var generator = SplitMix64(state: 11)
        for length in [1 << 20, 3 * (1 << 20) + 37] {
            let message = randomBytes(length, &generator)
            let hardware = try digestInPieces(.hardware, message, maximumPiece: 200_000, generator: &generator)
            let portable = try digestInPieces(.portable, message, maximumPiece: 200_000, generator: &generator)
            XCTAssertEqual(hardware, portable, "length \(length)")
        }
    }

    func testHardwareFedOneByteAtATimeMatchesOneCall() throws {
        var generator = SplitMix64(state: 5)
        let message = randomBytes(1000, &generator)
        var hasher = try hasher(.hardware)
        for byte in message { hasher.update([byte]) }
        XCTAssertEqual(hasher.finalize().hex, try digest(.hardware, message))
    }
}
