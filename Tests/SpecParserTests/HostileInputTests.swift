import Foundation
import TestSupport
import XCTest

@testable import SpecParser

/// Inputs meant to break a parser. Each must end quickly with a diagnostic or a file error: no
/// crash, no hang, no stack overflow. The corpus is generated here, not checked in.
final class HostileInputTests: XCTestCase {
    /// Generous for debug builds on a shared machine; each case takes milliseconds.
    private let timeLimit: TimeInterval = 5

    private func check(
        _ bytes: [UInt8], expecting code: SpecDiagnosticCode? = nil, file: StaticString = #filePath, line: UInt = #line
    ) {
        let start = Date()
        let result = SpecLoader.parse(bytes: bytes, path: "hostile.yaml")
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertLessThan(elapsed, timeLimit, "took \(elapsed) s", file: file, line: line)
        XCTAssertNil(result.spec, file: file, line: line)
        XCTAssertTrue(result.diagnostics.hasErrors || result.fileError != nil, "no diagnostic", file: file, line: line)
        if let code {
            XCTAssertTrue(
                result.diagnostics.contains { $0.code == code.rawValue }, "\(result.diagnostics.map(\.code))", file: file,
                line: line)
        }
        // Rendering must be as robust as parsing.
        let sources = result.source.map { ["hostile.yaml": $0] } ?? [:]
        _ = DiagnosticRenderer.text(result.diagnostics, sources: sources, color: true)
        _ = DiagnosticRenderer.json(result.diagnostics)
    }

    private func check(_ text: String, expecting code: SpecDiagnosticCode? = nil, file: StaticString = #filePath, line: UInt = #line) {
        check(Array(text.utf8), expecting: code, file: file, line: line)
    }

    func testEmptyFile() { check([], expecting: .emptySpec) }
    func testScalarAtRoot() { check("hello\n", expecting: .wrongType) }
    func testListAtRoot() { check("- 1\n- 2\n", expecting: .wrongType) }
    func testInvalidUTF8() { check([0x6E, 0x3A, 0x20, 0xC3, 0x28, 0x0A], expecting: .notText) }
    func testUTF16IsNotUTF8() { check([0xFF, 0xFE, 0x6E, 0x00, 0x3A, 0x00], expecting: .notText) }
    func testNULBytes() { check([0x6E, 0x3A, 0x20, 0x61, 0x00, 0x62, 0x0A], expecting: .notText) }
    func testTabIndentation() { check("model:\n\tlayers: []\n", expecting: .yamlSyntax) }
    func testUnclosedBrackets() { check("model: {layers: [relu, {linear: {out: 3\n", expecting: .yamlSyntax) }
    func testUnclosedQuote() { check("name: \"abc\n", expecting: .yamlSyntax) }
    func testSeveralDocuments() { check("name: a\n---\nname: b\n---\nname: c\n", expecting: .multipleDocuments) }

    func testBillionLaughs() {
        var text = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for level in 1...9 {
            let refs = Array(repeating: "*a\(level - 1)", count: 9).joined(separator: ", ")
            text += "a\(level): &a\(level) [\(refs)]\n"
        }
        check(text, expecting: .anchorOrAlias)
    }

    func testFlowNesting100000Deep() {
        check(String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000), expecting: .nestingTooDeep)
    }

    func testFlowMappingNesting100000Deep() {
        check(String(repeating: "{a: ", count: 100_000), expecting: .nestingTooDeep)
    }

    func testBlockSequenceNesting100000Deep() {
        check(String(repeating: "- ", count: 100_000) + "x\n", expecting: .nestingTooDeep)
    }

    func testFiveMegabyteLineIsRefusedBeforeParsing() {
        let result = SpecLoader.parse(bytes: Array(repeating: 0x61, count: 5 << 20), path: "big.yaml")
        XCTAssertNotNil(result.fileError)
        XCTAssertNil(result.source)
    }

    func testLongLineUnderTheLimit() {
        check("name: " + String(repeating: "a", count: 900_000) + "\n", expecting: .invalidName)
    }

    func testHugeFlowListUnderTheLimit() {
        let items = Array(repeating: "1", count: 400_000).joined(separator: ",")
        check("model: {input_shape: [\(items)]}\n")
    }

    func testManyUnknownKeysAreCapped() {
        let text = (0..<80_000).map { "k\($0): 1\n" }.joined()
        XCTAssertLessThan(text.utf8.count, SpecLoader.maximumFileSize)
        check(text, expecting: .unknownKey)
    }

    func testRandomBytes() {
        var generator = SplitMix64(seed: 42)
        for _ in 0..<200 {
            let count = Int(generator.next() % 2048)
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            let result = SpecLoader.parse(bytes: bytes, path: "random.yaml")
            XCTAssertTrue(result.diagnostics.hasErrors, "random bytes never make a spec")
        }
    }

    func testByteFlipsOfAValidSpec() {
        var generator = SplitMix64(seed: 7)
        let original = Array(minimalSpec.utf8)
        for _ in 0..<300 {
            var bytes = original
            for _ in 0...(generator.next() % 3) {
                bytes[Int(generator.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: generator.next())
            }
            let result = SpecLoader.parse(bytes: bytes, path: "flipped.yaml")
            XCTAssertTrue(result.spec != nil || result.diagnostics.hasErrors, "either a spec or an error")
            _ = DiagnosticRenderer.text(result.diagnostics, sources: result.source.map { [$0.path: $0] } ?? [:], color: false)
        }
    }

    // MARK: paths

    private func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("mlpc-spec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func testMissingPath() throws {
        let path = try temporaryDirectory().appendingPathComponent("absent.yaml").path
        let result = SpecLoader.load(path: path)
        XCTAssertTrue(result.fileError?.contains("No such file") ?? false, "\(result.fileError ?? "nil")")
        XCTAssertEqual(result.diagnostics, [])
    }

    func testDirectoryInsteadOfAFile() throws {
        let directory = try temporaryDirectory()
        XCTAssertTrue(SpecLoader.load(path: directory.path).fileError?.contains("is a directory") ?? false)
    }

    func testDeviceInsteadOfAFile() {
        XCTAssertTrue(SpecLoader.load(path: "/dev/null").fileError?.contains("not a regular file") ?? false)
    }

    func testFileOverTheSizeLimit() throws {
        let url = try temporaryDirectory().appendingPathComponent("big.yaml")
        try Data(repeating: 0x20, count: SpecLoader.maximumFileSize + 1).write(to: url)
        XCTAssertTrue(SpecLoader.load(path: url.path).fileError?.contains("too large") ?? false)
    }

    func testLoadReadsAFileAndResolvesItsDataDirectory() throws {
        let url = try temporaryDirectory().appendingPathComponent("tiny.yaml")
        try Data(minimalSpec.utf8).write(to: url)
        let result = SpecLoader.load(path: url.path)
        XCTAssertNil(result.fileError)
        XCTAssertEqual(result.spec?.data.resolvedDirectory, url.deletingLastPathComponent().path + "/data")
        XCTAssertEqual(result.source?.path, url.path)
    }
}
