import XCTest

@testable import SpecParser

/// A fixture with its expected positions marked inside the text, as swift-format's tests do:
/// `1️⃣` marks the place a diagnostic must point at; markers are removed before parsing.
struct MarkedFixture {
    let text: String
    let markers: [String: SourceLocation]

    static let markerNames = ["1️⃣", "2️⃣", "3️⃣", "4️⃣"]

    init(_ marked: String, file: String = "spec.yaml") {
        var text = ""
        var markers: [String: SourceLocation] = [:]
        var line = 1
        var column = 1
        var rest = Substring(marked)
        outer: while let character = rest.first {
            for name in MarkedFixture.markerNames where rest.hasPrefix(name) {
                markers[name] = SourceLocation(file: file, line: line, column: column)
                rest = rest.dropFirst(name.count)
                continue outer
            }
            text.append(character)
            if character == "\n" {
                line += 1
                column = 1
            } else {
                column += character.utf8.count
            }
            rest = rest.dropFirst()
        }
        self.text = text
        self.markers = markers
    }
}

/// A complete, valid spec to vary in tests.
let minimalSpec = """
    name: tiny
    data: {dir: data}
    model:
      input_shape: [4]
      layers:
        - linear: {out: 2}
    loss: cross_entropy
    optimizer: {kind: sgd, lr: 0.1}
    training: {batch_size: 2, epochs: 1}

    """

func parse(_ text: String, path: String = "spec.yaml", dataDirectoryOverride: String? = nil) -> SpecLoadResult {
    SpecLoader.parse(bytes: Array(text.utf8), path: path, dataDirectoryOverride: dataDirectoryOverride)
}

/// Parses a spec that must decode cleanly, failing the test with the rendered diagnostics otherwise.
func decodeClean(
    _ text: String, path: String = "spec.yaml", dataDirectoryOverride: String? = nil,
    file: StaticString = #filePath, line: UInt = #line
) -> Spec? {
    let result = parse(text, path: path, dataDirectoryOverride: dataDirectoryOverride)
    let errors = result.diagnostics.filter { $0.severity == .error }
    if result.spec == nil || !errors.isEmpty {
        let rendered = DiagnosticRenderer.text(
            result.diagnostics, sources: result.source.map { [$0.path: $0] } ?? [:], color: false)
        XCTFail("expected a clean spec, got:\n\(rendered)\(result.fileError ?? "")", file: file, line: line)
    }
    return result.spec
}

/// Parses a marked fixture and checks that a diagnostic with `code` points at marker 1️⃣ (or at no
/// location when the fixture has no marker). Returns the diagnostic for further checks.
@discardableResult
func expectDiagnostic(
    _ code: SpecDiagnosticCode, in marked: String, messageContains: String? = nil, suggestion: String? = nil,
    file: StaticString = #filePath, line: UInt = #line
) -> Diagnostic? {
    let fixture = MarkedFixture(marked)
    let result = parse(fixture.text)
    let expectedLocation = fixture.markers["1️⃣"]
    let matching = result.diagnostics.filter { $0.code == code.rawValue }
    guard let diagnostic = matching.first(where: { $0.location == expectedLocation }) else {
        XCTFail(
            "no \(code.rawValue) at \(expectedLocation?.description ?? "no location"); got: "
                + result.diagnostics.map { "\($0.code) \($0.location?.description ?? "-") \($0.message)" }.joined(separator: "; "),
            file: file, line: line)
        return nil
    }
    if let messageContains {
        XCTAssertTrue(
            diagnostic.message.contains(messageContains), "message '\(diagnostic.message)' lacks '\(messageContains)'",
            file: file, line: line)
    }
    if let suggestion {
        XCTAssertEqual(diagnostic.suggestion, suggestion, file: file, line: line)
    }
    if code.rawValue.hasPrefix("E") {
        XCTAssertNil(result.spec, "a spec with errors must not decode", file: file, line: line)
    }
    return diagnostic
}
