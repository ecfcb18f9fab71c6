import Foundation
import XCTest

/// `mlpc check`: summaries of valid specs and located diagnostics for invalid ones.
final class CheckCommandTests: XCTestCase {
    /// A valid spec with one line replaced, written to a temporary folder; returns its path.
    func writeSpec(_ text: String, name: String = "spec.yaml") throws -> String {
        let path = try makeTemporaryDirectory(self) + "/" + name
        try writeFile(path, text)
        return path
    }

    func testReferenceSpecChecksWithItsParameterCount() throws {
        let missingData = try makeTemporaryDirectory(self) + "/not-there"
        let result = try MLPCProcess.run(["check", "specs/mnist_mlp.yaml", "--data-dir", missingData])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("total parameters: 109,386"), result.stdout)
        XCTAssertTrue(result.stdout.contains("fc1 "), result.stdout)
        XCTAssertTrue(result.stdout.hasSuffix("specs/mnist_mlp.yaml: ok\n"), result.stdout)
    }

    func testEveryExampleSpecChecks() throws {
        let folder = MLPCProcess.repositoryRoot + "/specs"
        let specs = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertFalse(specs.isEmpty, "no example specs in \(folder)")
        let missingData = try makeTemporaryDirectory(self) + "/not-there"
        for spec in specs {
            let result = try MLPCProcess.run(["check", "specs/" + spec, "--data-dir", missingData])
            assertNoCrash(result)
            XCTAssertEqual(result.status, 0, "\(spec): \(result.stderr)")
            XCTAssertTrue(result.stdout.contains("total parameters: "), "\(spec): \(result.stdout)")
            XCTAssertTrue(result.stdout.hasSuffix("specs/\(spec): ok\n"), "\(spec): \(result.stdout)")
        }
    }

    func testUnknownKeyIsReportedWithLocationSourceLineCaretCodeAndSuggestion() throws {
        let text = TinyDataset.spec().replacingOccurrences(of: "  epochs: 2", with: "  epoch: 2")
        let path = try writeSpec(text)
        let result = try MLPCProcess.run(["check", path])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 1)
        let lines = result.stderrLines
        let lineNumber = try XCTUnwrap(TinyDataset.line(of: "epoch: 2", in: text))
        let header = "\(path):\(lineNumber):3: error: unknown key 'epoch' in 'training' [E0120]"
        let index = try XCTUnwrap(lines.firstIndex(of: header), result.stderr)
        XCTAssertEqual(lines[index + 1], "  epoch: 2")
        XCTAssertEqual(lines[index + 2], "  ^")
        XCTAssertTrue(result.stderr.contains("help: did you mean 'epochs'?"), result.stderr)
        XCTAssertTrue(result.stdout.isEmpty, result.stdout)
    }

    func testMisspelledLayerKindSuggestsTheRightKind() throws {
        let text = TinyDataset.spec().replacingOccurrences(of: "- linear: {out: 16", with: "- linaer: {out: 16")
        let path = try writeSpec(text)
        let result = try MLPCProcess.run(["check", path])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 1)
        let lineNumber = try XCTUnwrap(TinyDataset.line(of: "linaer", in: text))
        XCTAssertTrue(result.stderr.contains("\(path):\(lineNumber):"), result.stderr)
        XCTAssertTrue(result.stderr.contains("[E0124]"), result.stderr)
        XCTAssertTrue(result.stderr.contains("did you mean 'linear'?"), result.stderr)
    }

    func testEveryErrorIsReportedInFileOrder() throws {
        let text = TinyDataset.spec()
            .replacingOccurrences(of: "activation: relu", with: "activation: rleu")
            .replacingOccurrences(of: "batch_size: 16", with: "batch_size: -4")
        let path = try writeSpec(text)
        let result = try MLPCProcess.run(["check", path])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 1)
        let activation = try XCTUnwrap(result.stderr.range(of: "[E0125]"), result.stderr)
        let batch = try XCTUnwrap(result.stderr.range(of: "[E0123]"), result.stderr)
        XCTAssertLessThan(activation.lowerBound, batch.lowerBound)
    }

    func testJSONFormatPrintsDiagnosticsWithThePromisedFields() throws {
        let text = TinyDataset.spec().replacingOccurrences(of: "  epochs: 2", with: "  epoch: 2")
        let path = try writeSpec(text)
        let result = try MLPCProcess.run(["check", path, "--format", "json"])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 1)
        let diagnostics = try XCTUnwrap(try jsonValue(result.stdout) as? [[String: Any]])
        let unknown = try XCTUnwrap(diagnostics.first { $0["code"] as? String == "E0120" }, result.stdout)
        for key in ["file", "line", "column", "severity", "code", "message", "notes", "suggestion"] {
            XCTAssertNotNil(unknown[key], "missing \(key) in \(unknown)")
        }
        XCTAssertEqual(unknown["file"] as? String, path)
        XCTAssertEqual(unknown["line"] as? Int, TinyDataset.line(of: "epoch: 2", in: text))
        XCTAssertEqual(unknown["column"] as? Int, 3)
        XCTAssertEqual(unknown["severity"] as? String, "error")
        XCTAssertEqual(unknown["suggestion"] as? String, "did you mean 'epochs'?")
        XCTAssertNotNil(unknown["notes"] as? [Any])
    }

    func testJSONFormatOfAValidSpecIsAnArrayAndExitsZero() throws {
        let data = try makeTemporaryDirectory(self)
        try TinyDataset.write(to: data)
        let path = try writeSpec(TinyDataset.spec())
        let result = try MLPCProcess.run(["check", path, "--format", "json", "--data-dir", data])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 0, result.stderr)
        let diagnostics = try XCTUnwrap(try jsonValue(result.stdout) as? [[String: Any]], result.stdout)
        XCTAssertFalse(diagnostics.contains { $0["severity"] as? String == "error" }, result.stdout)
    }

    func testDataWhoseImagesDoNotFitTheInputShapeIsAnError() throws {
        let data = try makeTemporaryDirectory(self)
        try TinyDataset.write(to: data)
        let text = TinyDataset.spec().replacingOccurrences(of: "input_shape: [1, 6, 6]", with: "input_shape: [1, 28, 28]")
        let path = try writeSpec(text)
        let result = try MLPCProcess.run(["check", path, "--data-dir", data])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("[E0403]"), result.stderr)
        XCTAssertTrue(result.stderr.contains("\(path):\(TinyDataset.line(of: "input_shape", in: text) ?? 0):"), result.stderr)
    }
}
