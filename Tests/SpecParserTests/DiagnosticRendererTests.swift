import XCTest

@testable import SpecParser

final class DiagnosticRendererTests: XCTestCase {
    private let source = SourceFile(path: "s.yaml", text: "training:\n  epoch: 3\n")

    func testTextHasHeaderSourceLineCaretAndHelp() {
        let diagnostic = Diagnostic.error(
            "E0120", "unknown key 'epoch' in 'training'", at: SourceLocation(file: "s.yaml", line: 2, column: 3),
            suggestion: "did you mean 'epochs'?")
        let text = DiagnosticRenderer.text([diagnostic], sources: ["s.yaml": source], color: false)
        XCTAssertEqual(
            text,
            """
            s.yaml:2:3: error: unknown key 'epoch' in 'training' [E0120]
              epoch: 3
              ^
              help: did you mean 'epochs'?

            """)
    }

    func testNotesWithAndWithoutLocation() {
        let diagnostic = Diagnostic.error(
            "E0108", "duplicate key", at: SourceLocation(file: "s.yaml", line: 2, column: 3),
            notes: [
                DiagnosticNote("first given here", at: SourceLocation(file: "s.yaml", line: 1, column: 1)),
                DiagnosticNote("no place"),
            ])
        let text = DiagnosticRenderer.text([diagnostic], sources: ["s.yaml": source], color: false)
        XCTAssertTrue(text.contains("s.yaml:1:1: note: first given here\ntraining:\n^\n"), text)
        XCTAssertTrue(text.hasSuffix("  note: no place\n"), text)
    }

    func testDiagnosticWithoutLocation() {
        let text = DiagnosticRenderer.text([.error("E0109", "too many", at: nil)], sources: [:], color: false)
        XCTAssertEqual(text, "mlpc: error: too many [E0109]\n")
    }

    func testWarningLabel() {
        let text = DiagnosticRenderer.text(
            [.warning("W0100", "no effect", at: SourceLocation(file: "other", line: 1, column: 1))], sources: [:], color: false)
        XCTAssertEqual(text, "other:1:1: warning: no effect [W0100]\n", "no source line when the file is unknown")
    }

    func testCaretFollowsTabs() {
        let source = SourceFile(path: "t", text: "\tab: x\n")
        let text = DiagnosticRenderer.text(
            [.error("E0100", "m", at: SourceLocation(file: "t", line: 1, column: 5))], sources: ["t": source], color: false)
        XCTAssertTrue(text.hasSuffix("\tab: x\n\t   ^\n"), text)
    }

    func testLongLineIsShownAsAWindowAroundTheColumn() {
        let line = String(repeating: "a", count: 10_000) + "X" + String(repeating: "b", count: 10_000)
        let source = SourceFile(path: "l", text: line)
        let text = DiagnosticRenderer.text(
            [.error("E0100", "m", at: SourceLocation(file: "l", line: 1, column: 10_001))], sources: ["l": source],
            color: false)
        let lines = text.split(separator: "\n")
        XCTAssertLessThan(lines[1].count, 200)
        let caretColumn = lines[2].count - 1
        XCTAssertEqual(Array(lines[1])[caretColumn], "X")
    }

    func testColorWrapsSeverityInANSI() {
        let text = DiagnosticRenderer.text(
            [.error("E0100", "m", at: SourceLocation(file: "s.yaml", line: 1, column: 1))], sources: ["s.yaml": source],
            color: true)
        XCTAssertTrue(text.contains("\u{1B}[1;31merror:\u{1B}[0m"))
    }

    private struct DecodedDiagnostic: Decodable, Equatable {
        struct Note: Decodable, Equatable {
            var file: String?
            var line: Int?
            var column: Int?
            var message: String
        }
        var file: String?
        var line: Int?
        var column: Int?
        var severity: String
        var code: String
        var message: String
        var notes: [Note]
        var suggestion: String?
    }

    func testJSONRoundTrip() throws {
        let diagnostics: [Diagnostic] = [
            .error(
                "E0131", "duplicate layer name 'fc1'", at: SourceLocation(file: "a/b.yaml", line: 4, column: 7),
                notes: [DiagnosticNote("first used here", at: SourceLocation(file: "a/b.yaml", line: 2, column: 7))],
                suggestion: "rename it"),
            .warning("W0101", "no place", at: nil, notes: [DiagnosticNote("loose")]),
        ]
        let json = DiagnosticRenderer.json(diagnostics)
        let decoded = try JSONDecoder().decode([DecodedDiagnostic].self, from: Data(json.utf8))
        XCTAssertEqual(
            decoded,
            [
                DecodedDiagnostic(
                    file: "a/b.yaml", line: 4, column: 7, severity: "error", code: "E0131",
                    message: "duplicate layer name 'fc1'",
                    notes: [.init(file: "a/b.yaml", line: 2, column: 7, message: "first used here")], suggestion: "rename it"),
                DecodedDiagnostic(
                    file: nil, line: nil, column: nil, severity: "warning", code: "W0101", message: "no place",
                    notes: [.init(file: nil, line: nil, column: nil, message: "loose")], suggestion: nil),
            ])
        XCTAssertTrue(json.contains("\"suggestion\" : null"), "absent values are explicit nulls")
    }

    func testRenderingARealParseShowsTheOffendingLine() {
        let result = parse("training:\n  batch_size: abc\n", path: "s.yaml")
        let text = DiagnosticRenderer.text(
            result.diagnostics.filter { $0.code == "E0122" }, sources: ["s.yaml": result.source!], color: false)
        XCTAssertTrue(text.hasPrefix("s.yaml:2:15: error: expected an integer for 'training.batch_size', found 'abc' [E0122]\n  batch_size: abc\n              ^\n"), text)
    }
}
