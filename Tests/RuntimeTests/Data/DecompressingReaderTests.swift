import Foundation
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

/// `DecompressingReader.digestRemaining`: hashing a gzip stream as it inflates, without keeping it
/// (how a downloaded file is checked).
final class DecompressingReaderTests: XCTestCase {
    private func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var generator = SplitMix64(state: seed)
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next() >> 58) }
    }

    func testDigestRemainingIsTheDigestAndLengthOfTheDecompressedBytes() throws {
        let bytes = randomBytes(600_000, seed: 1)
        let reader = try DecompressingReader(compressedBytes: DataFixtures.gzip(bytes), name: "memory.gz")
        let (digest, count) = try reader.digestRemaining(limit: 1 << 20)
        var reference = try XCTUnwrap(SHA256(implementation: .portable))
        reference.update(bytes)
        XCTAssertEqual(digest, reference.finalize())
        XCTAssertEqual(count, bytes.count)
    }

    func testDigestRemainingAcceptsExactlyTheLimit() throws {
        let bytes = randomBytes(1000, seed: 2)
        let reader = try DecompressingReader(compressedBytes: DataFixtures.gzip(bytes), name: "memory.gz")
        XCTAssertEqual(try reader.digestRemaining(limit: 1000).count, 1000)
    }

    func testDigestRemainingRefusesMoreThanTheLimit() throws {
        let bytes = randomBytes(1001, seed: 3)
        let reader = try DecompressingReader(compressedBytes: DataFixtures.gzip(bytes), name: "memory.gz")
        let error = DataFixtures.expectIDXError(.tooLarge) { _ = try reader.digestRemaining(limit: 1000) }
        XCTAssertEqual(error?.position, .decompressed(1000))
        XCTAssertEqual(error?.path, "memory.gz")
    }

    func testDigestRemainingReportsATruncatedStream() throws {
        let compressed = DataFixtures.gzip(randomBytes(5000, seed: 4))
        let reader = try DecompressingReader(compressedBytes: Array(compressed.dropLast(10)), name: "memory.gz")
        DataFixtures.expectIDXError(.truncatedCompression) { _ = try reader.digestRemaining(limit: 1 << 20) }
    }
}
