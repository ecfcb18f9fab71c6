import XCTest

@testable import SpecParser

/// Text from a spec (a path, a key) or from the command line (the spec's path) can hold control
/// characters. A path cannot hold NUL at all; everything else reaches the terminal escaped, never raw.
final class ControlCharacterTests: XCTestCase {
    func testDataDirectoryWithANulCharacterIsRefusedAtTheValue() {
        let text = minimalSpec.replacingOccurrences(of: "data: {dir: data}", with: "data: {dir: 1️⃣\"a\\0b\"}")
        let diagnostic = expectDiagnostic(.outOfRange, in: text, messageContains: "contains a NUL character")
        XCTAssertTrue(diagnostic?.message.contains("'a\\u{0}b'") ?? false, diagnostic?.message ?? "")
        XCTAssertFalse(diagnostic?.message.unicodeScalars.contains("\0") ?? true)
    }

    func testDataDirectoryWithATabIsStillAPath() {
        let text = minimalSpec.replacingOccurrences(of: "data: {dir: data}", with: "data: {dir: \"a\\tb\"}")
        XCTAssertEqual(decodeClean(text)?.data.directory.value, "a\tb")
    }

    func testDuplicateKeyWithAnEscapeCharacterIsQuotedEscaped() {
        let text = "\"a\\eb\": 1\n1️⃣\"a\\eb\": 2\n"
        let diagnostic = expectDiagnostic(.duplicateKey, in: text)
        XCTAssertEqual(diagnostic?.message, "duplicate key 'a\\u{1B}b' in the spec")
    }

    func testRendererEscapesControlCharactersInMessagesNotesAndSuggestions() {
        let location = SourceLocation(file: "spec.yaml", line: 1, column: 1)
        let diagnostic = Diagnostic(
            .warning, code: "W0401", "the data directory a\u{1B}[31mb does not exist", at: location,
            notes: [DiagnosticNote("at\u{7}here", at: location), DiagnosticNote("line\nbreak")],
            suggestion: "use\u{9B}c")
        let rendered = DiagnosticRenderer.text([diagnostic], sources: [:], color: false)
        XCTAssertTrue(rendered.contains("the data directory a\\u{1B}[31mb does not exist"), rendered)
        XCTAssertTrue(rendered.contains("note: at\\u{7}here"), rendered)
        XCTAssertTrue(rendered.contains("note: line\nbreak"), rendered)  // a message laid out on lines keeps them
        XCTAssertTrue(rendered.contains("help: use\\u{9B}c"), rendered)
        XCTAssertFalse(rendered.unicodeScalars.contains { $0 == "\u{1B}" || $0 == "\u{7}" || $0 == "\u{9B}" }, rendered)
    }

    func testRendererEscapesControlCharactersInTheFileName() {
        let diagnostic = Diagnostic(
            .error, code: "E0100", "bad", at: SourceLocation(file: "a\u{1B}]0;x\u{7}.yaml", line: 2, column: 3))
        let rendered = DiagnosticRenderer.text([diagnostic], sources: [:], color: false)
        XCTAssertTrue(rendered.hasPrefix("a\\u{1B}]0;x\\u{7}.yaml:2:3: error: bad [E0100]"), rendered)
    }

    func testRendererKeepsOrdinaryTextAsItIs() {
        let diagnostic = Diagnostic(.error, code: "E0123", "'data.dir' must not be empty — données", at: nil)
        XCTAssertEqual(
            DiagnosticRenderer.text([diagnostic], sources: [:], color: false),
            "mlpc: error: 'data.dir' must not be empty — données [E0123]\n")
    }
}
