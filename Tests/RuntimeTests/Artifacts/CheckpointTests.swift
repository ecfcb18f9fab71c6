import Foundation
import Planner
import SpecParser
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

final class CheckpointTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = try TinyData.makeDirectory(self) }

    /// Dropout draws from the optimizer step and Adam's bias correction counts steps: both must carry over.
    static let dropoutAdam = TinyData.specText(
        layers: "    - flatten\n    - linear: {out: 24, activation: relu}\n    - dropout: {p: 0.3}\n    - linear: {out: 3}",
        optimizer: "{kind: adam, lr: 0.01}", batch: 16)
    static let sgdMomentum = TinyData.specText(optimizer: "{kind: sgd, lr: 0.05, momentum: 0.9}", batch: 16)

    func freshRun(_ text: String, epochs: Int, out: String, threads: Int = 1) throws -> TrainingRun {
        let (spec, plan, data) = try TinyData.prepare(text, directory: directory, threads: threads)
        let run = try TrainingRun(
            spec: spec, plan: plan, kernels: kernels(for: plan.target.isa), data: data,
            options: .init(epochs: epochs, seed: spec.seed.value, outputDirectory: out, mlpcVersion: "test"))
        return run
    }

    func testResumingAtAnEpochBoundaryEndsBitIdentical() throws {
        for text in [Self.dropoutAdam, Self.sgdMomentum] {
            let reference = try TinyData.run(text, directory: directory, epochs: 4)
            let out = try makeTemporaryDirectory(self, "mlpc-ckpt")
            let first = try freshRun(text, epochs: 4, out: out)
            try first.prepareOutput()
            for epoch in 1...2 { _ = try first.runEpoch(epoch) }

            let second = try freshRun(text, epochs: 4, out: out)
            try second.resume(from: Checkpoint.read(path: first.checkpointPath, plan: second.plan), path: first.checkpointPath)
            XCTAssertEqual(second.nextEpoch, 3)
            try second.prepareOutput()
            for epoch in second.nextEpoch...4 { _ = try second.runEpoch(epoch) }
            XCTAssertEqual(TinyData.parameterDigest(second), TinyData.parameterDigest(reference), text)
            XCTAssertEqual(second.metrics.map(\.meanLoss), reference.metrics.map(\.meanLoss))
        }
    }

    /// On one thread and on two, where the interrupted step has already gathered the next batch ahead
    /// and the resumed epoch's first step gathers its own.
    func testInterruptMidEpochCheckpointsTheStepAndResumesBitIdentical() throws {
        let text = Self.dropoutAdam
        let reference = try TinyData.run(text, directory: directory, epochs: 3)
        for threads in [1, 2] {
            let out = try makeTemporaryDirectory(self, "mlpc-ckpt")
            let first = try freshRun(text, epochs: 3, out: out, threads: threads)
            try first.prepareOutput()
            var steps = 0
            first.trainer.stopRequested = {
                steps += 1
                return steps == first.trainer.stepsPerEpoch + 3  // the 3rd step of epoch 2
            }
            XCTAssertThrowsError(try { for epoch in 1...3 { _ = try first.runEpoch(epoch) } }()) { error in
                guard case RuntimeError.interrupted(let epoch, let step) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(epoch, 2)
                XCTAssertEqual(step, 3)
            }
            let second = try freshRun(text, epochs: 3, out: out, threads: threads)
            let checkpoint = try Checkpoint.read(path: first.checkpointPath, plan: second.plan)
            XCTAssertEqual(checkpoint.completedEpochs, 1)
            XCTAssertEqual(checkpoint.partialEpoch?.stepsDone, 3)
            XCTAssertEqual(checkpoint.optimizerSteps, first.trainer.stepsPerEpoch + 3)
            try second.resume(from: checkpoint, path: first.checkpointPath)
            XCTAssertEqual(second.nextEpoch, 2)
            for epoch in second.nextEpoch...3 { _ = try second.runEpoch(epoch) }
            XCTAssertEqual(TinyData.parameterDigest(second), TinyData.parameterDigest(reference), "\(threads) threads")
            // The interrupted epoch's mean loss is the uninterrupted one, to the bit.
            XCTAssertEqual(second.metrics.map(\.meanLoss), reference.metrics.map(\.meanLoss))
            XCTAssertEqual(second.metrics.map(\.lastLoss), reference.metrics.map(\.lastLoss))
            if threads > 1 {
                XCTAssertTrue(second.trainer.executor.prefetchesBatches)
                XCTAssertGreaterThan(second.trainer.executor.stepsWithPreparedBatch, 0)
            }
        }
    }

    func testCheckpointHoldsMomentsUnderPyTorchStateNames() throws {
        let run = try TinyData.run(Self.dropoutAdam, directory: directory, epochs: 1)
        let file = try SafetensorsFile.read(path: run.checkpointPath)
        let names = Set(file.tensors.map(\.name))
        for name in ["fc1.weight", "exp_avg.fc1.weight", "exp_avg_sq.fc2.bias"] { XCTAssertTrue(names.contains(name), name) }
        XCTAssertEqual(file.metadata["epoch"], "1")
        XCTAssertEqual(file.metadata["optimizer_steps"], String(run.trainer.stepsPerEpoch))
        XCTAssertEqual(file.metadata["seed"], "7")
        XCTAssertEqual(file.metadata["spec_sha256"], SHA256.hash(Array(run.spec.resolvedYAML.utf8)).hex)
    }

    func testCheckpointOfAnotherSeedIsRefused() throws {
        let run = try TinyData.run(Self.sgdMomentum, directory: directory, epochs: 1)
        let (spec, plan, data) = try TinyData.prepare(Self.sgdMomentum, directory: directory)
        let out = try makeTemporaryDirectory(self, "mlpc-ckpt")
        let other = try TrainingRun(
            spec: spec, plan: plan, kernels: kernels(for: plan.target.isa), data: data,
            options: .init(epochs: 2, seed: 99, outputDirectory: out, mlpcVersion: "test"))
        XCTAssertThrowsError(try other.resume(from: Checkpoint.read(path: run.checkpointPath, plan: plan), path: run.checkpointPath)) {
            XCTAssertTrue("\($0)".contains("its seed is 7, this run's 99"), "\($0)")
        }
    }

    func testCheckpointForAnotherModelNamesTheMismatch() throws {
        let run = try TinyData.run(Self.sgdMomentum, directory: directory, epochs: 1)
        let (_, plan, _) = try TinyData.prepare(Self.dropoutAdam, directory: directory)
        XCTAssertThrowsError(try Checkpoint.read(path: run.checkpointPath, plan: plan)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix(run.checkpointPath), text)
            XCTAssertTrue(text.contains("fc1.weight: the file has [16, 36]"), text)
            XCTAssertTrue(text.contains("exp_avg.fc1.weight is missing"), text)
        }
    }
}
