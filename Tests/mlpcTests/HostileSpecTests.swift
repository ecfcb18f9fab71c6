import Foundation
import XCTest

/// Hostile spec files through `mlpc check`: each ends with exit 1 (a diagnostic) or 2 (a file error),
/// says why on stderr, never crashes, and finishes quickly.
final class HostileSpecTests: XCTestCase {
    /// Generous for a debug build on a loaded two-core machine; a linear-time reader needs a fraction.
    static let timeLimit = 5.0

    @discardableResult
    func checkRefuses(
        _ bytes: [UInt8], allowedStatuses: Set<Int32> = [1, 2], mentioning expected: String? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> CommandResult {
        let path = try makeTemporaryDirectory(self, "mlpc-hostile") + "/hostile.yaml"
        try writeFile(path, bytes: bytes)
        return try checkRefuses(path: path, allowedStatuses: allowedStatuses, mentioning: expected, file: file, line: line)
    }

    @discardableResult
    func checkRefuses(
        path: String, allowedStatuses: Set<Int32> = [1, 2], mentioning expected: String? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> CommandResult {
        let result = try MLPCProcess.run(["check", path], timeout: 30)
        assertNoCrash(result, file: file, line: line)
        XCTAssertTrue(allowedStatuses.contains(result.status), "exit \(result.status); stderr: \(result.stderr.prefix(2000))", file: file, line: line)
        XCTAssertTrue(result.stderr.contains("error"), "no diagnostic on stderr: \(result.stderr.prefix(2000))", file: file, line: line)
        if let expected {
            XCTAssertTrue(result.stderr.contains(expected), "expected '\(expected)' in: \(result.stderr.prefix(2000))", file: file, line: line)
        }
        XCTAssertLessThan(result.seconds, Self.timeLimit, "took \(result.seconds) s", file: file, line: line)
        return result
    }

    func testEmptyFile() throws {
        try checkRefuses([], allowedStatuses: [1], mentioning: "[E0102]")
    }

    func testOnlyComments() throws {
        try checkRefuses(Array("# nothing here\n# at all\n".utf8), allowedStatuses: [1], mentioning: "[E0102]")
    }

    func testScalarRoot() throws {
        try checkRefuses(Array("just a string\n".utf8), allowedStatuses: [1], mentioning: "[E0122]")
    }

    func testListRoot() throws {
        try checkRefuses(Array("- name: a\n- name: b\n".utf8), allowedStatuses: [1], mentioning: "[E0122]")
    }

    func testInvalidUTF8() throws {
        try checkRefuses(Array("name: ab".utf8) + [0xFF, 0xFE] + Array("\n".utf8), allowedStatuses: [1], mentioning: "[E0101]")
    }

    func testUTF16Text() throws {
        let utf16: [UInt8] = [0xFF, 0xFE] + Array("name: a\n".utf8).flatMap { [$0, 0] }
        try checkRefuses(utf16, allowedStatuses: [1], mentioning: "[E0101]")
    }

    func testNULBytes() throws {
        try checkRefuses(Array("name: a".utf8) + [0, 0, 0] + Array("\nseed: 1\n".utf8), allowedStatuses: [1], mentioning: "[E0101]")
    }

    func testTabIndentation() throws {
        try checkRefuses(Array("training:\n\tepochs: 3\n".utf8), allowedStatuses: [1], mentioning: "[E0100]")
    }

    func testUnclosedFlowSequence() throws {
        try checkRefuses(Array("model:\n  input_shape: [1, 28, 28\n  layers: [flatten\n".utf8), allowedStatuses: [1], mentioning: "[E0100]")
    }

    func testUnclosedQuote() throws {
        try checkRefuses(Array("name: \"abc\nseed: 1\n".utf8), allowedStatuses: [1], mentioning: "[E0100]")
    }

    func testSeveralDocuments() throws {
        try checkRefuses(Array("name: a\n---\nname: b\n".utf8), allowedStatuses: [1], mentioning: "[E0103]")
    }

    func testBillionLaughs() throws {
        var text = "a: &a [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n"
        var previous = "a"
        for name in ["b", "c", "d", "e", "f", "g", "h", "i"] {
            text += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ", ") + "]\n"
            previous = name
        }
        try checkRefuses(Array(text.utf8), allowedStatuses: [1], mentioning: "[E0104]")
    }

    func testHundredThousandDeepFlowNesting() throws {
        let depth = 100_000
        let text = "model: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "\n"
        try checkRefuses(Array(text.utf8), allowedStatuses: [1], mentioning: "[E0105]")
    }

    func testDeepBlockNestingWithinTheSizeLimit() throws {
        var text = ""
        // Deep block mappings within the size limit: one short key per level, one more space each time.
        for level in 0..<1_400 { text += String(repeating: " ", count: level) + "k:\n" }
        try checkRefuses(Array(text.utf8), allowedStatuses: [1], mentioning: "[E0105]")
    }

    func testFiveMegabyteLine() throws {
        let text = "name: " + String(repeating: "x", count: 5 << 20) + "\n"
        try checkRefuses(Array(text.utf8), allowedStatuses: [2], mentioning: "too large for a spec")
    }

    func testLongLineWithinTheSizeLimit() throws {
        let text = "name: " + String(repeating: "x", count: 1_000_000) + "\n"
        try checkRefuses(Array(text.utf8), allowedStatuses: [1])
    }

    func testRandomBytes() throws {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for round in 0..<5 {
            let bytes = (0..<4096).map { _ -> UInt8 in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return UInt8(truncatingIfNeeded: state >> 56)
            }
            let result = try checkRefuses(bytes, allowedStatuses: [1])
            XCTAssertFalse(result.stderr.isEmpty, "round \(round)")
        }
    }

    func testDirectory() throws {
        try checkRefuses(path: try makeTemporaryDirectory(self), allowedStatuses: [2], mentioning: "is a directory")
    }

    func testMissingPath() throws {
        try checkRefuses(path: try makeTemporaryDirectory(self) + "/no/such/spec.yaml", allowedStatuses: [2], mentioning: "No such file")
    }

    func testDevZero() throws {
        try checkRefuses(path: "/dev/zero", allowedStatuses: [2], mentioning: "not a regular file")
    }
}
