import Foundation
import Planner
import SpecParser
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

/// A resumed run trusts only checkpoints whose counters this run's epochs can reach, and keeps the
/// run's history (spec path, start time, total seconds) in run.json and the model file.
final class CheckpointConsistencyTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = try TinyData.makeDirectory(self) }

    static let text = TinyData.specText(optimizer: "{kind: adam, lr: 0.01}", batch: 16)

    func makeRun(epochs: Int, out: String, specPath: String? = nil) throws -> TrainingRun {
        var (spec, plan, data) = try TinyData.prepare(Self.text, directory: directory)
        if let specPath { spec.path = specPath }
        return try TrainingRun(
            spec: spec, plan: plan, kernels: kernels(for: plan.target.isa), data: data,
            options: .init(epochs: epochs, seed: spec.seed.value, outputDirectory: out, mlpcVersion: "test"))
    }

    /// A run stopped after `steps` steps of epoch 2, and the path of its checkpoint.
    func interruptedRun(afterSteps steps: Int) throws -> TrainingRun {
        let out = try makeTemporaryDirectory(self, "mlpc-ckpt-consistency")
        let run = try makeRun(epochs: 3, out: out)
        try run.prepareOutput()
        var taken = 0
        run.trainer.stopRequested = {
            taken += 1
            return taken == run.trainer.stepsPerEpoch + steps
        }
        XCTAssertThrowsError(try { for epoch in 1...3 { _ = try run.runEpoch(epoch) } }())
        return run
    }

    /// Rewrites the checkpoint at `path` with `change` applied to its metadata and tensors.
    func edit(_ path: String, _ change: (inout SafetensorsFile) -> Void) throws {
        var file = try SafetensorsFile.read(path: path)
        change(&file)
        try file.write(to: path)
    }

    func resumeError(_ path: String) throws -> String {
        let other = try makeRun(epochs: 3, out: try makeTemporaryDirectory(self, "mlpc-ckpt-consistency"))
        do {
            try other.resume(from: Checkpoint.read(path: path, plan: other.plan), path: path)
        } catch {
            return "\(error)"
        }
        XCTFail("the damaged checkpoint \(path) was accepted")
        return ""
    }

    func testTheUndamagedCheckpointResumes() throws {
        let run = try interruptedRun(afterSteps: 2)
        let other = try makeRun(epochs: 3, out: try makeTemporaryDirectory(self, "mlpc-ckpt-consistency"))
        try other.resume(from: Checkpoint.read(path: run.checkpointPath, plan: other.plan), path: run.checkpointPath)
        XCTAssertEqual(other.partialEpoch?.stepsDone, 2)
    }

    func testFewerEpochsThanReachedAreNamed() throws {
        let run = try interruptedRun(afterSteps: 2)
        let settings = try Checkpoint.settings(path: run.checkpointPath)
        XCTAssertEqual(settings.completedEpochs, 1)
        XCTAssertEqual(settings.stepInEpoch, 2)
        XCTAssertEqual(settings.shortfall(epochs: 1), "it stopped in epoch 2, after step 2; give --epochs 2 or more")
        XCTAssertNil(settings.shortfall(epochs: 2))
        var boundary = settings
        boundary.stepInEpoch = 0
        XCTAssertEqual(boundary.shortfall(epochs: 0), "it has completed 1 epoch; give --epochs 1 or more")
        XCTAssertNil(boundary.shortfall(epochs: 1))
    }

    func testAStepBeyondTheEpochIsRefused() throws {
        let run = try interruptedRun(afterSteps: 2)
        try edit(run.checkpointPath) { $0.metadata["step_in_epoch"] = "99999" }
        let text = try resumeError(run.checkpointPath)
        XCTAssertTrue(text.hasPrefix(run.checkpointPath), text)
        XCTAssertTrue(text.contains("stopped after step 99999 of epoch 2, but an epoch of this run has \(run.trainer.stepsPerEpoch) steps"), text)
    }

    func testOptimizerStepsThatDisagreeWithTheEpochsAreRefused() throws {
        let run = try interruptedRun(afterSteps: 2)
        try edit(run.checkpointPath) { $0.metadata["optimizer_steps"] = "0" }
        let text = try resumeError(run.checkpointPath)
        let expected = run.trainer.stepsPerEpoch + 2
        XCTAssertTrue(text.contains("its optimizer_steps is 0, but 1 epochs of \(run.trainer.stepsPerEpoch) steps and 2 more make \(expected)"), text)
    }

    func testRowsThatDisagreeWithTheStepsAreRefused() throws {
        let run = try interruptedRun(afterSteps: 2)
        try edit(run.checkpointPath) { $0.metadata["epoch_rows"] = "5" }
        XCTAssertTrue(try resumeError(run.checkpointPath).contains("its epoch_rows is 5, but 2 steps of batch 16 see 32"))
    }

    func testANegativeSecondMomentIsReportedAsDamage() throws {
        let run = try interruptedRun(afterSteps: 2)
        try edit(run.checkpointPath) { file in
            guard let index = file.tensors.firstIndex(where: { $0.name == "exp_avg_sq.fc1.weight" }) else { return XCTFail("no exp_avg_sq") }
            file.tensors[index].values[5] = -0.25
        }
        XCTAssertThrowsError(try Checkpoint.read(path: run.checkpointPath, plan: run.plan)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix(run.checkpointPath), text)
            XCTAssertTrue(text.contains("tensor 'exp_avg_sq.fc1.weight' holds -0.25 at element 5"), text)
            XCTAssertTrue(text.contains("the checkpoint is damaged"), text)
        }
    }

    /// Resuming reads the run directory's copy of the spec; the record and the model still name the file
    /// the run was started from, keep its start time, and count the seconds of every session.
    func testResumeKeepsTheRunsHistory() throws {
        let out = try makeTemporaryDirectory(self, "mlpc-ckpt-history")
        let first = try makeRun(epochs: 3, out: out, specPath: "/original/tiny.yaml")
        try first.prepareOutput()
        for epoch in 1...2 { _ = try first.runEpoch(epoch) }
        let secondsOfFirst = first.record.totalSeconds
        XCTAssertGreaterThan(secondsOfFirst, 0)

        let second = try makeRun(epochs: 3, out: out, specPath: out + "/spec.yaml")
        try second.resume(from: Checkpoint.read(path: first.checkpointPath, plan: second.plan), path: first.checkpointPath)
        try second.prepareOutput()
        _ = try second.runEpoch(3)
        _ = try second.finish()
        XCTAssertEqual(second.record.specPath, "/original/tiny.yaml")
        XCTAssertEqual(second.record.startedAt, first.record.startedAt)
        XCTAssertGreaterThan(second.record.totalSeconds, secondsOfFirst)
        XCTAssertGreaterThanOrEqual(second.secondsBefore, secondsOfFirst)
        let record = try JSONDecoder().decode(RunRecord.self, from: Data(contentsOf: URL(fileURLWithPath: out + "/run.json")))
        XCTAssertEqual(record.specPath, "/original/tiny.yaml")
        XCTAssertEqual(record.totalSeconds, second.record.totalSeconds)
        let model = try SafetensorsFile.read(path: second.modelPath)
        XCTAssertEqual(model.metadata[ArtifactMetadataKey.specPath], "/original/tiny.yaml")
    }

    /// run.json is written after the last checkpoint (the final files, an interruption): its later total
    /// is the one a resume continues from.
    func testResumeContinuesFromRunJSONsLaterTotal() throws {
        let out = try makeTemporaryDirectory(self, "mlpc-ckpt-history")
        let first = try makeRun(epochs: 1, out: out)
        try first.prepareOutput()
        _ = try first.runEpoch(1)
        let atCheckpoint = try XCTUnwrap(Checkpoint.read(path: first.checkpointPath, plan: first.plan).history).totalSeconds
        usleep(20_000)
        _ = try first.finish()
        XCTAssertGreaterThan(first.record.totalSeconds, atCheckpoint)
        let second = try makeRun(epochs: 1, out: out)
        try second.resume(from: Checkpoint.read(path: first.checkpointPath, plan: second.plan), path: first.checkpointPath)
        XCTAssertEqual(second.secondsBefore, first.record.totalSeconds)
    }

    /// Checkpoints written before they recorded the history take it from the run's run.json.
    func testACheckpointWithoutHistoryTakesItFromRunJSON() throws {
        let out = try makeTemporaryDirectory(self, "mlpc-ckpt-history")
        let first = try makeRun(epochs: 2, out: out, specPath: "/original/tiny.yaml")
        try first.prepareOutput()
        _ = try first.runEpoch(1)
        try edit(first.checkpointPath) { file in
            for key in ["spec_path", "started_at", "total_seconds"] { file.metadata[key] = nil }
        }
        let second = try makeRun(epochs: 2, out: out, specPath: out + "/spec.yaml")
        let checkpoint = try Checkpoint.read(path: first.checkpointPath, plan: second.plan)
        XCTAssertNil(checkpoint.history)
        try second.resume(from: checkpoint, path: first.checkpointPath)
        XCTAssertEqual(second.record.specPath, "/original/tiny.yaml")
        XCTAssertEqual(second.record.startedAt, first.record.startedAt)
        XCTAssertEqual(second.secondsBefore, first.record.totalSeconds)
    }
}
