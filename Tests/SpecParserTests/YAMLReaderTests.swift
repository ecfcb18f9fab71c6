import XCTest

@testable import SpecParser

/// The YAML tree and its locations (1-based lines, 1-based byte columns).
final class YAMLReaderTests: XCTestCase {
    private func root(_ text: String) throws -> YAMLNode {
        let output = YAMLReader.read(Array(text.utf8), file: "f.yaml")
        XCTAssertEqual(output.diagnostics, [])
        return try XCTUnwrap(output.root)
    }

    private func entries(_ node: YAMLNode) throws -> [YAMLNode.Entry] {
        guard case .mapping(let entries) = node.content else {
            XCTFail("expected a mapping")
            return []
        }
        return entries
    }

    func testBlockMappingLocations() throws {
        let entries = try entries(root("a: 1\nbb:\n  c: x\n"))
        XCTAssertEqual(entries.map(\.key.value), ["a", "bb"])
        XCTAssertEqual(entries[0].key.location, SourceLocation(file: "f.yaml", line: 1, column: 1))
        XCTAssertEqual(entries[0].value.location, SourceLocation(file: "f.yaml", line: 1, column: 4))
        let inner = try self.entries(entries[1].value)
        XCTAssertEqual(inner[0].key.location, SourceLocation(file: "f.yaml", line: 3, column: 3))
        XCTAssertEqual(inner[0].value.location, SourceLocation(file: "f.yaml", line: 3, column: 6))
    }

    func testFlowSequenceItemLocations() throws {
        let entries = try entries(root("s: [1, 22, 333]\n"))
        guard case .sequence(let items) = entries[0].value.content else { return XCTFail("expected a list") }
        XCTAssertEqual(items.map(\.location.column), [5, 8, 12])
    }

    func testColumnsCountBytesAfterMultibyteCharacters() throws {
        // "é" is two bytes: 7 is at character column 11, byte column 12.
        let sameLine = try self.entries(root("{a: é, b: 7}\n"))
        XCTAssertEqual(sameLine[1].value.location.column, 12)
    }

    func testCRLFLineEndings() throws {
        let entries = try entries(root("a: 1\r\nb: 2\r\n"))
        XCTAssertEqual(entries[1].key.location, SourceLocation(file: "f.yaml", line: 2, column: 1))
    }

    func testScalarStyles() throws {
        let entries = try entries(root("a: 1\nb: '1'\nc: \"1\"\nd:\n"))
        XCTAssertEqual(entries.map { $0.value.scalar?.style }, [.plain, .quoted, .quoted, .plain])
        XCTAssertTrue(entries[3].value.isNull)
    }

    func testSyntaxErrorStopsWithoutATree() {
        let output = YAMLReader.read(Array("a: [1, 2\n".utf8), file: "f.yaml")
        XCTAssertNil(output.root)
        XCTAssertEqual(output.diagnostics.map(\.code), ["E0100"])
    }

    func testTabIndentationIsASyntaxError() {
        let output = YAMLReader.read(Array("a:\n\tb: 1\n".utf8), file: "f.yaml")
        XCTAssertEqual(output.diagnostics.map(\.code), ["E0100"])
        XCTAssertEqual(output.diagnostics.first?.location?.line, 2)
    }

    func testDepthAtTheBoundIsAccepted() throws {
        let depth = YAMLReader.maximumDepth
        let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        _ = try root(text)
    }

    func testByteOrderMarkIsAcceptedAndCountedInColumns() throws {
        let output = YAMLReader.read([0xEF, 0xBB, 0xBF] + Array("a: 1\n".utf8), file: "f.yaml")
        XCTAssertEqual(output.diagnostics, [])
        let entries = try entries(XCTUnwrap(output.root))
        XCTAssertEqual(entries.first?.key.location.column, 4, "the key follows the mark's three bytes")
    }

    func testSourceFileLines() {
        let source = SourceFile(path: "f", text: "a\r\nb\rc\nd")
        XCTAssertEqual(source.line(1), "a")
        XCTAssertEqual(source.line(2), "b")
        XCTAssertEqual(source.line(3), "c")
        XCTAssertEqual(source.line(4), "d")
        XCTAssertNil(source.line(5))
        XCTAssertNil(source.line(0))
        XCTAssertEqual(SourceFile(path: "f", text: "x\n").lineCount, 1)
    }
}
