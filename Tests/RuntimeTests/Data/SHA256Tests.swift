import Foundation
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

final class SHA256Tests: XCTestCase {
    // The FIPS 180-4 example messages (NIST CSRC "Examples with Intermediate Values").

    func testEmptyMessage() {
        XCTAssertEqual(SHA256.hash([]).hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    func testABC() {
        XCTAssertEqual(SHA256.hash(Array("abc".utf8)).hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    func testTwoBlock448BitMessage() {
        let message = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        XCTAssertEqual(SHA256.hash(message).hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    func testOneMillionLetterA() {
        XCTAssertEqual(
            SHA256.hash([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)).hex,
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testFeedingInPiecesGivesTheSameDigestAsOneCall() {
        var generator = SplitMix64(state: 99)
        let message = (0..<1000).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        var hasher = SHA256()
        var start = 0
        for size in [0, 1, 63, 64, 65, 3, 127, 200] {
            hasher.update(Array(message[start..<(start + size)]))
            start += size
        }
        hasher.update(Array(message[start...]))
        XCTAssertEqual(hasher.finalize(), SHA256.hash(message))
    }

    func testAgreesWithPythonHashlibOnRandomMessagesOfEveryPaddingLength() throws {
        // Lengths around the block and padding boundaries (55, 56, 64, 119, 120, ...), plus larger ones.
        let lengths = Array(0...130) + [191, 192, 1000, 4096, 65_537, 300_001]
        var generator = SplitMix64(state: 2024)
        var blob = [UInt8]()
        var expected: [String] = []
        for length in lengths {
            let message = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            blob += message
            expected.append(SHA256.hash(message).hex)
        }
        let directory = try DataFixtures.makeScratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/messages.bin"
        try DataFixtures.write(blob, to: path)
        let script = """
        import hashlib, sys
        data = open(sys.argv[1], 'rb').read()
        position = 0
        for length in map(int, sys.argv[2].split(',')):
            print(hashlib.sha256(data[position:position + length]).hexdigest())
            position += length
        """
        let output = try DataFixtures.runPython(script, arguments: [path, lengths.map(String.init).joined(separator: ",")])
        let python = output.split(separator: "\n").map(String.init)
        XCTAssertEqual(python.count, lengths.count)
        for (index, length) in lengths.enumerated() where index < python.count {
            XCTAssertEqual(expected[index], python[index], "message of \(length) bytes")
        }
    }

    func testDigestHexRoundTrip() {
        let digest = SHA256.hash(Array("abc".utf8))
        XCTAssertEqual(SHA256Digest(hex: digest.hex), digest)
        XCTAssertEqual(SHA256Digest(hex: digest.hex.uppercased()), digest)
        XCTAssertNil(SHA256Digest(hex: "abc"))
        XCTAssertNil(SHA256Digest(hex: String(repeating: "g", count: 64)))
    }
}
