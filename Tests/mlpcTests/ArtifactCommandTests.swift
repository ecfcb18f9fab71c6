import Foundation
import XCTest

/// `mlpc eval`, `predict`, `show` and `run --resume` as a user runs them: the real binary, a tiny dataset.
final class ArtifactCommandTests: XCTestCase {
    /// One trained run shared by the tests that only read it.
    struct TrainedRun {
        var data: String
        var run: String
        var spec: String
    }

    nonisolated(unsafe) static var shared: TrainedRun?

    func trained() throws -> TrainedRun {
        if let shared = Self.shared { return shared }
        // Outlives this test: removed in the class tear-down, or here when training fails.
        let root = try createTemporaryDirectory("mlpc-artifacts-shared")
        do {
            try ArtifactCLI.writeDataset(into: root, trainCount: 240)
            let spec = root + "/tiny.yaml"
            try ArtifactCLI.spec(epochs: 15).write(toFile: spec, atomically: true, encoding: .utf8)
            let result = try ArtifactCLI.run(["run", spec, "--data-dir", root, "--out", root + "/run", "--quiet"])
            XCTAssertEqual(result.status, 0, result.error)
            guard result.status == 0 else { throw XCTSkip("training the shared run failed: \(result.error)") }
            let trained = TrainedRun(data: root, run: root + "/run", spec: spec)
            Self.shared = trained
            return trained
        } catch {
            try? FileManager.default.removeItem(atPath: root)
            throw error
        }
    }

    override class func tearDown() {
        if let shared = Self.shared { try? FileManager.default.removeItem(atPath: shared.data) }
        Self.shared = nil
        super.tearDown()
    }

    func testRunLeavesModelWeightsCheckpointAndPictures() throws {
        let t = try trained()
        for name in ["weights.safetensors", "model.safetensors", "checkpoint.safetensors", "samples.png", "predictions.png", "curves.png", "confusion.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: t.run + "/" + name), name)
        }
    }

    func testEvalPrintsAccuracyPerClassAndTheConfusionMatrix() throws {
        let t = try trained()
        let result = try ArtifactCLI.run(["eval", t.run + "/model.safetensors"])
        XCTAssertEqual(result.status, 0, result.error)
        let lines = result.output.components(separatedBy: "\n")
        XCTAssertTrue(lines[0].hasPrefix("Accuracy: "), result.output)
        XCTAssertTrue(lines[0].contains("% (95% CI ±"), result.output)
        XCTAssertTrue(lines[0].hasSuffix("on 60 test images (\(t.run)/model.safetensors)"), result.output)
        // Twenty test images per class; each class line counts them.
        XCTAssertEqual(lines.filter { $0.hasPrefix("   ") && $0.hasSuffix("/20)") }.count, 3, result.output)
        let header = try XCTUnwrap(lines.firstIndex(of: "confusion matrix (rows: true class, columns: predicted):"))
        XCTAssertEqual(lines[header + 1], "      0  1  2")
        let rows = lines[(header + 2)...(header + 4)].map { $0.split(separator: " ").compactMap { Int($0) } }
        XCTAssertEqual(rows.map { $0.first }, [0, 1, 2])
        XCTAssertEqual(rows.map { $0.dropFirst().reduce(0, +) }, [20, 20, 20])
    }

    func testEvalAcceptsTheRunDirectory() throws {
        let t = try trained()
        let result = try ArtifactCLI.run(["eval", t.run])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("on 60 test images"), result.output)
    }

    func testPredictClassifiesAColourPNGOfAnotherSize() throws {
        let t = try trained()
        // Class 1 is a bright bar in rows 2 and 3 of 6; drawn here at 12 x 12 in orange on black.
        let rows: [[UInt8]] = (0..<12).map { y in
            (0..<12).flatMap { _ -> [UInt8] in (4..<8).contains(y) ? [255, 200, 120] : [10, 10, 10] }
        }
        let path = t.data + "/bar.png"
        try Data(ArtifactCLI.png(width: 12, height: 12, rgbRows: rows)).write(to: URL(fileURLWithPath: path))
        let result = try ArtifactCLI.run(["predict", t.run + "/model.safetensors", path, "--invert", "never"])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.hasPrefix("\(path): 1\n"), result.output)
        let probabilities = result.output.components(separatedBy: "\n").dropFirst().prefix(3)
            .compactMap { $0.split(separator: " ").dropFirst().first.flatMap { Double($0) } }
        XCTAssertEqual(probabilities.count, 3, result.output)
        XCTAssertEqual(probabilities.reduce(0, +), 1, accuracy: 2e-4)
        XCTAssertGreaterThan(probabilities[1], 0.5)
    }

    func testPredictIndexPrintsTheTrueLabel() throws {
        let t = try trained()
        let result = try ArtifactCLI.run(["predict", t.run + "/model.safetensors", "--index", "4", "--index", "5"])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("test image 4: 1 (true: 1)"), result.output)
        XCTAssertTrue(result.output.contains("test image 5: 2 (true: 2)"), result.output)
        XCTAssertEqual(result.output.components(separatedBy: "\n").filter { $0.hasPrefix("   ") }.count, 6)
    }

    func testPredictIndexOutOfRangeFailsNamingTheFile() throws {
        let t = try trained()
        let result = try ArtifactCLI.run(["predict", t.run + "/model.safetensors", "--index", "60"])
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.error.contains("--index 60 is out of range"), result.error)
        XCTAssertTrue(result.error.contains("t10k-images-idx3-ubyte holds 60 test images"), result.error)
    }

    func testPredictMissingOrBrokenPNGFailsNamingIt() throws {
        let t = try trained()
        let missing = t.data + "/missing.png"
        var result = try ArtifactCLI.run(["predict", t.run + "/model.safetensors", missing])
        XCTAssertEqual(result.status, 2, "a path that does not exist is an unusable argument")
        XCTAssertTrue(result.error.contains(missing), result.error)
        let broken = t.data + "/broken.png"
        try Data("not a picture".utf8).write(to: URL(fileURLWithPath: broken))
        result = try ArtifactCLI.run(["predict", t.run + "/model.safetensors", broken])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.error.contains(broken), result.error)
        XCTAssertEqual(result.output, "", "nothing is classified when one input is bad")
    }

    func testEvalOfATruncatedModelFailsNamingTheFile() throws {
        let t = try trained()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: t.run + "/model.safetensors"))
        let path = t.data + "/truncated.safetensors"
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: path))
        let result = try ArtifactCLI.run(["eval", path])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.error.hasPrefix("mlpc: error: \(path): not a usable model file"), result.error)
    }

    func testEvalOfAFileThatIsNotAModelFails() throws {
        let t = try trained()
        var result = try ArtifactCLI.run(["eval", t.spec])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.error.contains(t.spec + ": not a usable model file"), result.error)
        result = try ArtifactCLI.run(["eval", t.data + "/none.safetensors"])
        XCTAssertEqual(result.status, 2, "a path that does not exist is an unusable argument")
        XCTAssertTrue(result.error.contains(t.data + "/none.safetensors: no such file"), result.error)
    }

    func testEvalWithAMismatchedSpecNamesTheSpecLine() throws {
        let t = try trained()
        let text = ArtifactCLI.spec(hidden: 12, epochs: 1)
        let other = t.data + "/other.yaml"
        try text.write(toFile: other, atomically: true, encoding: .utf8)
        let line = try XCTUnwrap(text.components(separatedBy: "\n").firstIndex { $0.contains("out: 12") }) + 1
        let result = try ArtifactCLI.run(["eval", t.run + "/weights.safetensors", "--spec", other, "--data-dir", t.data])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.error.contains("fc1.weight: the file has [16, 36], \(other):\(line) says [12, 36]"), result.error)
        XCTAssertTrue(result.error.contains(t.run + "/weights.safetensors"), result.error)
    }

    func testEvalOfAWeightsFileWithoutSpecAsksForOne() throws {
        let t = try trained()
        let result = try ArtifactCLI.run(["eval", t.run + "/weights.safetensors"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.error.contains("--spec SPEC"), result.error)
    }

    func testShowDrawsTheImageWithItsLabel() throws {
        let t = try trained()
        let result = try ArtifactCLI.run(["show", t.data, "--index", "1", "--style", "ascii"])
        XCTAssertEqual(result.status, 0, result.error)
        let lines = result.output.components(separatedBy: "\n")
        XCTAssertEqual(lines[0], "test image 1 of \(t.data)/t10k-images-idx3-ubyte: label 1")
        XCTAssertEqual(lines.count, 1 + 6 + 1)
        XCTAssertTrue(lines[1...6].allSatisfy { $0.count == 12 })
        // The bar of class 1 is in image rows 2 and 3; the other rows are dim noise.
        XCTAssertTrue(lines[3].allSatisfy { "%@#*".contains($0) }, lines[3])
        XCTAssertTrue(lines[1].allSatisfy { " .:".contains($0) }, lines[1])
    }

    func testShowTrainingImageAndBlocks() throws {
        let t = try trained()
        let result = try ArtifactCLI.run(["show", t.data, "--index", "2", "--train", "--style", "blocks"])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.hasPrefix("training image 2 of \(t.data)/train-images-idx3-ubyte: label 2\n"), result.output)
        XCTAssertEqual(result.output.components(separatedBy: "\u{2580}").count - 1, 6 * 3)
    }

    func testShowIndexOutOfRangeOrMissingDataFails() throws {
        let t = try trained()
        var result = try ArtifactCLI.run(["show", t.data, "--index", "240", "--train"])
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.error.contains("train-images-idx3-ubyte holds 240 images"), result.error)
        let empty = try makeTemporaryDirectory(self, "mlpc-artifacts-empty")
        result = try ArtifactCLI.run(["show", empty, "--index", "0"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.error.contains("t10k-images-idx3-ubyte"), result.error)
        XCTAssertTrue(result.error.contains(empty), result.error)
    }

    /// A real SIGINT to a training child: it finishes the step, saves a checkpoint, says how to resume
    /// and exits 3; resuming ends with exactly the weights of a run that was never interrupted.
    func testInterruptSavesACheckpointAndResumeEndsWithTheUninterruptedWeights() throws {
        let root = try makeTemporaryDirectory(self, "mlpc-artifacts-sigint")
        try ArtifactCLI.writeDataset(into: root, trainCount: 12000)
        let spec = root + "/tiny.yaml"
        try ArtifactCLI.spec(hidden: 32, epochs: 30, batch: 4, dropout: true).write(toFile: spec, atomically: true, encoding: .utf8)

        let reference = try ArtifactCLI.run(["run", spec, "--data-dir", root, "--out", root + "/reference", "--quiet"])
        XCTAssertEqual(reference.status, 0, reference.error)

        let dir = root + "/interrupted"
        let (child, out, err) = try ArtifactCLI.process(["run", spec, "--data-dir", root, "--out", dir, "--quiet"])
        try child.run()
        // Interrupt once the first epoch is recorded, while later epochs train.
        MLPCProcess.wait(for: child, upTo: 120, every: 2_000) { MLPCProcess.firstEpochRecorded(in: dir) }
        XCTAssertTrue(child.isRunning, "the run ended before it could be interrupted")
        kill(child.processIdentifier, SIGINT)
        let interrupted = ArtifactCLI.finish(child, out, err)
        XCTAssertEqual(interrupted.status, 3, interrupted.error)
        XCTAssertTrue(interrupted.error.contains("interrupted at epoch"), interrupted.error)
        XCTAssertTrue(interrupted.error.contains("resume with: mlpc run --resume \(dir)"), interrupted.error)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/checkpoint.safetensors"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/weights.safetensors"))
        let record = try String(contentsOfFile: dir + "/run.json", encoding: .utf8)
        XCTAssertTrue(record.contains("\"status\" : \"interrupted\""), record)

        let resumed = try ArtifactCLI.run(["run", "--resume", dir])
        XCTAssertEqual(resumed.status, 0, resumed.error)
        XCTAssertTrue(resumed.output.contains("resuming \(dir)"), resumed.output)
        let a = try Data(contentsOf: URL(fileURLWithPath: root + "/reference/weights.safetensors"))
        let b = try Data(contentsOf: URL(fileURLWithPath: dir + "/weights.safetensors"))
        XCTAssertEqual(a, b, "resumed weights differ from the uninterrupted run's")
        XCTAssertEqual(
            reference.output.components(separatedBy: "\n").first { $0.hasPrefix("Accuracy:") },
            resumed.output.components(separatedBy: "\n").first { $0.hasPrefix("Accuracy:") })
    }

    func testResumeRefusesADifferentSpecOrSeed() throws {
        let t = try trained()
        let other = t.data + "/changed.yaml"
        try ArtifactCLI.spec(hidden: 16, epochs: 20).write(toFile: other, atomically: true, encoding: .utf8)
        var result = try ArtifactCLI.run(["run", other, "--resume", t.run])
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.error.contains("\(other) differs from \(t.run)/spec.yaml"), result.error)
        result = try ArtifactCLI.run(["run", "--resume", t.run, "--seed", "4"])
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.error.contains("--seed 4 disagrees with the run's seed 3"), result.error)
    }

    func testResumeOfADirectoryWithoutCheckpointFails() throws {
        let empty = try makeTemporaryDirectory(self, "mlpc-artifacts-nocheckpoint")
        let result = try ArtifactCLI.run(["run", "--resume", empty])
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.error.contains("\(empty)/spec.yaml does not exist"), result.error)
    }
}
