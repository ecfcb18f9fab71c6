import Foundation
import XCTest

/// `mlpc run` on a tiny generated dataset: progress lines, the run directory, and the numerics guard.
final class RunCommandTests: XCTestCase {
    struct Prepared {
        var folder: String
        var specPath: String
        var dataDirectory: String
        var outDirectory: String
    }

    func prepare(spec: String = TinyDataset.spec()) throws -> Prepared {
        let folder = try makeTemporaryDirectory(self, "mlpc-run-test")
        try TinyDataset.write(to: folder + "/data")
        try writeFile(folder + "/tiny.yaml", spec)
        return Prepared(folder: folder, specPath: folder + "/tiny.yaml", dataDirectory: folder + "/data", outDirectory: folder + "/run")
    }

    func run(_ prepared: Prepared, epochs: Int, extra: [String] = []) throws -> CommandResult {
        let result = try MLPCProcess.run(
            ["run", prepared.specPath, "--data-dir", prepared.dataDirectory, "--epochs", "\(epochs)", "--out", prepared.outDirectory] + extra)
        assertNoCrash(result)
        return result
    }

    func runRecord(_ prepared: Prepared) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: prepared.outDirectory + "/run.json"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func testRunPrintsOneLossLinePerEpochAndTheAccuracyLine() throws {
        let prepared = try prepare()
        let result = try run(prepared, epochs: 3)
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let epochLines = lines.filter { $0.hasPrefix("Epoch [") }
        XCTAssertEqual(epochLines.count, 3, result.stdout)
        for (index, line) in epochLines.enumerated() {
            XCTAssertNotNil(line.range(of: #"^Epoch \[\#(index + 1)/3\], Loss: \d+\.\d{4}"#, options: .regularExpression), line)
        }
        let accuracy = try XCTUnwrap(lines.first { $0.hasPrefix("Accuracy: ") }, result.stdout)
        XCTAssertNotNil(accuracy.range(of: #"^Accuracy: \d{1,3}\.\d{2}% \(95% CI ±\d+\.\d{2}\)$"#, options: .regularExpression), accuracy)
    }

    func testRunRecordSaysCompletedWithAccuracyAndEpochTimes() throws {
        let prepared = try prepare()
        let result = try run(prepared, epochs: 2)
        XCTAssertEqual(result.status, 0, result.stderr)
        let record = try runRecord(prepared)
        XCTAssertEqual(record["status"] as? String, "completed")
        let accuracy = try XCTUnwrap(record["test_accuracy"] as? Double)
        XCTAssertTrue((0...100).contains(accuracy), "\(accuracy)")
        // The classes are separable bars; two epochs learn them.
        XCTAssertGreaterThan(accuracy, 60)
        XCTAssertNotNil(record["test_accuracy_ci95"] as? Double)
        XCTAssertEqual((record["epoch_seconds"] as? [Double])?.count, 2)
        XCTAssertEqual(record["epochs"] as? Int, 2)
        XCTAssertEqual(record["spec_name"] as? String, "tiny")
        XCTAssertEqual((record["data_sha256"] as? [String: String])?.count, 4)
    }

    func testMetricsHaveOneJSONObjectPerEpoch() throws {
        let prepared = try prepare()
        let result = try run(prepared, epochs: 3)
        XCTAssertEqual(result.status, 0, result.stderr)
        let text = try String(contentsOfFile: prepared.outDirectory + "/metrics.jsonl", encoding: .utf8)
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.count, 3, text)
        for (index, line) in lines.enumerated() {
            let object = try XCTUnwrap(try jsonValue(String(line)) as? [String: Any])
            XCTAssertEqual(object["epoch"] as? Int, index + 1)
            XCTAssertNotNil(object["mean_loss"] as? Double, String(line))
            XCTAssertNotNil(object["test_accuracy"] as? Double, String(line))
        }
    }

    /// The copy is the resolved spec: every default written out, the data directory actually used and
    /// the batch sizes that ran (the default eval_batch_size of 1000 is the 30 test images here), so
    /// the copy alone trains the same model again.
    func testRunDirectoryHoldsTheResolvedSpec() throws {
        let prepared = try prepare()
        let result = try run(prepared, epochs: 1)
        XCTAssertEqual(result.status, 0, result.stderr)
        let copy = try String(contentsOfFile: prepared.outDirectory + "/spec.yaml", encoding: .utf8)
        for expected in [
            "name: \"tiny\"", "seed: 7", "dir: \"\(URL(fileURLWithPath: prepared.dataDirectory).standardizedFileURL.path)\"",
            "normalize: {mean: 0.5, std: 0.5}", "- linear: {out: 16, bias: true, init: default, activation: relu, name: fc1}",
            "betas: [0.9, 0.999]", "batch_size: 16", "eval_batch_size: 30",
        ] {
            XCTAssertTrue(copy.contains(expected), "missing \(expected) in\n\(copy)")
        }
        let again = try MLPCProcess.run(["check", prepared.outDirectory + "/spec.yaml"])
        XCTAssertEqual(again.status, 0, again.stderr)
    }

    func testQuietPrintsOnlyTheAccuracyLine() throws {
        let prepared = try prepare()
        let result = try run(prepared, epochs: 1, extra: ["--quiet"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, result.stdout)
        XCTAssertTrue(lines.first?.hasPrefix("Accuracy: ") ?? false, result.stdout)
    }

    func testDivergingTrainingExitsThreeNamingTheKernelAndSpecLine() throws {
        let spec = TinyDataset.spec(optimizer: "{kind: sgd, lr: 1.0e+30}", epochs: 3)
        let prepared = try prepare(spec: spec)
        let result = try run(prepared, epochs: 3)
        XCTAssertEqual(result.status, 3, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        XCTAssertTrue(result.stderr.contains("diverged"), result.stderr)
        XCTAssertNotNil(result.stderr.range(of: #"kernel \S+"#, options: .regularExpression), result.stderr)
        XCTAssertNotNil(result.stderr.range(of: "\(prepared.specPath):\\d+:\\d+", options: .regularExpression), result.stderr)
        XCTAssertTrue(result.stderr.contains("run.json"), result.stderr)
        XCTAssertFalse(result.stdout.contains("Accuracy:"), result.stdout)
        let record = try runRecord(prepared)
        XCTAssertEqual(record["status"] as? String, "diverged")
    }

    /// An error located at a layer of the spec (E0406: a last batch of one row before a 1-d batch norm)
    /// names the spec once, with the layer's line, and leaves no run directory.
    func testARefusedBatchNormNamesTheSpecLineOnce() throws {
        let spec = TinyDataset.spec()
            .replacingOccurrences(of: "    - linear: {out: 16, activation: relu}", with: "    - linear: {out: 16, activation: relu}\n    - batch_norm")
            .replacingOccurrences(of: "batch_size: 16", with: "batch_size: 17")
        XCTAssertNotEqual(spec, TinyDataset.spec())
        let prepared = try prepare(spec: spec)
        let result = try run(prepared, epochs: 1)
        XCTAssertNotEqual(result.status, 0)
        let error = try XCTUnwrap(result.stderr.split(separator: "\n").first { $0.hasPrefix("mlpc: error:") }, result.stderr)
        let line = try XCTUnwrap(TinyDataset.line(of: "- batch_norm", in: spec))
        XCTAssertTrue(error.hasPrefix("mlpc: error: \(prepared.specPath):\(line):7: batch_norm layer 'bn1' would train on a last batch of 1 row"), String(error))
        XCTAssertEqual(error.components(separatedBy: prepared.specPath).count, 2, String(error))
        XCTAssertFalse(FileManager.default.fileExists(atPath: prepared.outDirectory + "/run.json"))
    }
}
