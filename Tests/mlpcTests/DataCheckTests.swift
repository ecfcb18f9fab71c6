import Foundation
import XCTest

/// What `mlpc check` and `mlpc run` find in the data before training: test images of the wrong shape,
/// and settings under which no training step would run.
final class DataCheckTests: XCTestCase {
    var folder = ""
    var data: String { folder + "/data" }

    override func setUpWithError() throws {
        folder = try makeTemporaryDirectory(self, "mlpc-data-check")
        try TinyDataset.write(to: data)
    }

    func writeSpec(_ text: String) throws -> String {
        let path = folder + "/spec.yaml"
        try writeFile(path, text)
        return path
    }

    /// 120 training examples, batch 128, drop_last: the only batch is partial and dropped.
    func testDropLastWithABatchLargerThanTheTrainingSetIsAnError() throws {
        let text = TinyDataset.spec().replacingOccurrences(of: "  batch_size: 16", with: "  batch_size: 128\n  drop_last: true")
        let path = try writeSpec(text)
        let check = try MLPCProcess.run(["check", path, "--data-dir", data])
        assertNoCrash(check)
        XCTAssertEqual(check.status, 1, check.stderr)
        XCTAssertTrue(check.stderr.contains("[E0405]"), check.stderr)
        XCTAssertTrue(check.stderr.contains("\(path):\(TinyDataset.line(of: "batch_size", in: text) ?? 0):"), check.stderr)
        XCTAssertTrue(check.stderr.contains("120 training examples, batch_size 128"), check.stderr)

        let out = folder + "/runs/tiny"
        let run = try MLPCProcess.run(["run", path, "--data-dir", data, "--out", out, "--quiet"])
        assertNoCrash(run)
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertTrue(run.stderr.contains("no training step would run"), run.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/runs"), "a run that never began left its directory")
    }

    /// The same refusal when the batch size comes from --batch-size names the flag, not the spec.
    func testDropLastWithABatchSizeFlagNamesTheFlag() throws {
        let text = TinyDataset.spec().replacingOccurrences(of: "  batch_size: 16", with: "  batch_size: 16\n  drop_last: true")
        let path = try writeSpec(text)
        let run = try MLPCProcess.run(["run", path, "--data-dir", data, "--out", folder + "/run", "--batch-size", "500", "--quiet"])
        assertNoCrash(run)
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertTrue(run.stderr.contains("(120 training examples, --batch-size 500); lower --batch-size to 120 or less"), run.stderr)
    }

    func testTestImagesOfAnotherShapeAreAnError() throws {
        // Replace the test images with 28x28 ones; the training images stay 6x6.
        let count = TinyDataset.testCount
        let images = [0, 0, 8, 3] + TinyDataset.bigEndian(count) + TinyDataset.bigEndian(28) + TinyDataset.bigEndian(28)
            + [UInt8](repeating: 7, count: count * 28 * 28)
        try writeFile(data + "/" + TinyDataset.testImages, bytes: images)
        let text = TinyDataset.spec()
        let path = try writeSpec(text)
        let check = try MLPCProcess.run(["check", path, "--data-dir", data])
        assertNoCrash(check)
        XCTAssertEqual(check.status, 1, check.stderr)
        XCTAssertTrue(check.stderr.contains("[E0403]"), check.stderr)
        XCTAssertTrue(check.stderr.contains(TinyDataset.testImages + " are [28, 28]"), check.stderr)
    }

    /// W0402 lists each missing file on a line of its own (the renderer keeps a message's line breaks).
    func testMissingTestFilesAreListedOnePerLine() throws {
        try FileManager.default.removeItem(atPath: data + "/" + TinyDataset.testImages)
        try FileManager.default.removeItem(atPath: data + "/" + TinyDataset.testLabels)
        let check = try MLPCProcess.run(["check", try writeSpec(TinyDataset.spec()), "--data-dir", data])
        XCTAssertEqual(check.status, 0, check.stderr)
        XCTAssertTrue(check.stderr.contains("[W0402]"), check.stderr)
        XCTAssertTrue(check.stderr.contains(":\n  \(TinyDataset.testImages): put"), check.stderr)
        XCTAssertFalse(check.stderr.contains("\\n"), check.stderr)
    }

    func testTheTrainingLineCountsTheExamplesItTrainsOn() throws {
        let text = TinyDataset.spec(epochs: 1).replacingOccurrences(of: "  normalize:", with: "  validation_fraction: 0.25\n  normalize:")
        let path = try writeSpec(text)
        let run = try MLPCProcess.run(["run", path, "--data-dir", data, "--out", folder + "/run"])
        assertNoCrash(run)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("90 training images (30 held out for validation)"), run.stdout)
    }
}
