import XCTest

@testable import SpecParser

/// A UTF-8 byte-order mark (EF BB BF, as Windows Notepad writes) may start a YAML 1.2 stream. It is not
/// part of the spec's text: positions count from the character after it, and nothing echoes it.
final class ByteOrderMarkTests: XCTestCase {
    private let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

    private func parseWithByteOrderMark(_ text: String) -> SpecLoadResult {
        SpecLoader.parse(bytes: byteOrderMark + Array(text.utf8), path: "spec.yaml")
    }

    func testSpecStartingWithAByteOrderMarkDecodes() throws {
        let result = parseWithByteOrderMark(minimalSpec)
        XCTAssertEqual(result.diagnostics, [])
        let spec = try XCTUnwrap(result.spec)
        XCTAssertEqual(spec.name.value, "tiny")
        XCTAssertEqual(spec.name.location, SourceLocation(file: "spec.yaml", line: 1, column: 7))
    }

    func testSourceTextAndSourceLinesLeaveTheByteOrderMarkOut() throws {
        let result = parseWithByteOrderMark(minimalSpec)
        XCTAssertEqual(result.spec?.sourceText, minimalSpec)
        let source = try XCTUnwrap(result.source)
        XCTAssertEqual(source.text, minimalSpec)
        XCTAssertEqual(source.line(1), "name: tiny")
    }

    func testResolvedSpecIsTheSameWithOrWithoutTheByteOrderMark() throws {
        let withMark = try XCTUnwrap(parseWithByteOrderMark(minimalSpec).spec)
        let without = try XCTUnwrap(decodeClean(minimalSpec))
        XCTAssertEqual(withMark.resolvedYAML, without.resolvedYAML)
        XCTAssertFalse(withMark.resolvedYAML.unicodeScalars.contains("\u{FEFF}"))
    }

    func testDiagnosticOnTheFirstLineCountsColumnsFromAfterTheByteOrderMark() {
        let fixture = MarkedFixture(minimalSpec.replacingOccurrences(of: "name: tiny", with: "name: 1️⃣a b"))
        let result = parseWithByteOrderMark(fixture.text)
        let diagnostic = result.diagnostics.first { $0.code == SpecDiagnosticCode.invalidName.rawValue }
        XCTAssertEqual(diagnostic?.location, fixture.markers["1️⃣"])
        XCTAssertEqual(diagnostic?.location?.column, 7)
    }

    func testDiagnosticOnALaterLineKeepsItsLineAndColumn() {
        let fixture = MarkedFixture(minimalSpec.replacingOccurrences(of: "epochs: 1", with: "epochs: 1️⃣0"))
        let result = parseWithByteOrderMark(fixture.text)
        XCTAssertEqual(result.diagnostics.map(\.code), [SpecDiagnosticCode.outOfRange.rawValue])
        XCTAssertEqual(result.diagnostics.first?.location, fixture.markers["1️⃣"])
    }

    func testRenderedExcerptShowsTheLineWithoutTheByteOrderMark() {
        let result = parseWithByteOrderMark(minimalSpec.replacingOccurrences(of: "name: tiny", with: "name: a b"))
        let rendered = DiagnosticRenderer.text(
            result.diagnostics, sources: result.source.map { [$0.path: $0] } ?? [:], color: false)
        XCTAssertTrue(rendered.contains("spec.yaml:1:7: error:"), rendered)
        XCTAssertTrue(rendered.contains("\nname: a b\n      ^\n"), rendered)
        XCTAssertFalse(rendered.unicodeScalars.contains("\u{FEFF}"), rendered)
    }

    func testInvalidUTF8AfterAByteOrderMarkReportsTheFileOffset() {
        let result = SpecLoader.parse(bytes: byteOrderMark + Array("name: ab".utf8) + [0xFF], path: "spec.yaml")
        XCTAssertEqual(result.diagnostics.map(\.code), [SpecDiagnosticCode.notText.rawValue])
        let diagnostic = result.diagnostics.first
        XCTAssertEqual(diagnostic?.location, SourceLocation(file: "spec.yaml", line: 1, column: 9))
        // The byte offset names the file's own bytes: 3 for the mark, 8 for "name: ab".
        XCTAssertTrue(diagnostic?.message.contains("at offset 11") ?? false, diagnostic?.message ?? "")
    }

    func testByteOrderMarkAloneIsAnEmptySpec() {
        let result = SpecLoader.parse(bytes: byteOrderMark, path: "spec.yaml")
        XCTAssertEqual(result.diagnostics.map(\.code), [SpecDiagnosticCode.emptySpec.rawValue])
        XCTAssertEqual(result.diagnostics.first?.location, SourceLocation(file: "spec.yaml", line: 1, column: 1))
    }

    func testByteOrderMarkIsDroppedWhenLoadingFromAFile() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("mlpc-bom-\(UUID().uuidString).yaml")
        try Data(byteOrderMark + Array(minimalSpec.utf8)).write(to: url)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        let result = SpecLoader.load(path: url.path)
        XCTAssertNil(result.fileError)
        XCTAssertEqual(result.diagnostics, [])
        XCTAssertEqual(result.spec?.sourceText, minimalSpec)
    }
}
