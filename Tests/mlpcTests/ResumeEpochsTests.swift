import Foundation
import XCTest

/// `mlpc run --resume DIR --epochs N` with N below what the run has reached: refused before anything in
/// the run directory changes, since the files would describe a model from later than their last epoch.
final class ResumeEpochsTests: XCTestCase {
    func snapshot(_ directory: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
            files[name] = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))
        }
        return files
    }

    func testFewerEpochsThanCompletedAreRefused() throws {
        let root = try makeTemporaryDirectory(self, "mlpc-resume-epochs")
        try ArtifactCLI.writeDataset(into: root, trainCount: 240)
        let spec = root + "/tiny.yaml"
        try ArtifactCLI.spec(epochs: 2).write(toFile: spec, atomically: true, encoding: .utf8)
        let run = root + "/run"
        let trained = try ArtifactCLI.run(["run", spec, "--data-dir", root, "--out", run, "--quiet"])
        XCTAssertEqual(trained.status, 0, trained.error)
        let before = try snapshot(run)

        let refused = try ArtifactCLI.run(["run", "--resume", run, "--epochs", "1"])
        XCTAssertEqual(refused.status, 2, refused.error)
        XCTAssertTrue(
            refused.error.contains("cannot resume \(run) for 1 epoch (\(run)/checkpoint.safetensors): it has completed 2 epochs; give --epochs 2 or more"),
            refused.error)
        XCTAssertEqual(try snapshot(run), before, "a refused resume changed the run directory")

        // As many epochs as completed: nothing to train, the record keeps its history.
        let again = try ArtifactCLI.run(["run", "--resume", run, "--epochs", "2", "--quiet"])
        XCTAssertEqual(again.status, 0, again.error)
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/run.json"))) as? [String: Any]
        let old = try JSONSerialization.jsonObject(with: XCTUnwrap(before["run.json"])) as? [String: Any]
        XCTAssertEqual(record?["spec_path"] as? String, spec)
        XCTAssertEqual(record?["started_at"] as? String, old?["started_at"] as? String)
        XCTAssertEqual(record?["epochs"] as? Int, 2)
        let total = try XCTUnwrap(record?["total_seconds"] as? Double)
        XCTAssertGreaterThanOrEqual(total, try XCTUnwrap(old?["total_seconds"] as? Double))
    }
}
