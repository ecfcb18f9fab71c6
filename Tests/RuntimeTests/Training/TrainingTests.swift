import Foundation
import KernelInterface
import MallocCounter
import Planner
import SpecParser
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

final class TrainingTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = try TinyData.makeDirectory(self) }

    func testTinyDatasetTrainsToNearZeroLoss() throws {
        let run = try TinyData.run(TinyData.specText(), directory: directory, epochs: 40)
        let last = try XCTUnwrap(run.metrics.last)
        XCTAssertLessThan(last.meanLoss, 0.02, "mean loss per epoch: \(run.metrics.map(\.meanLoss))")
        XCTAssertEqual(last.testAccuracy, 100)
        XCTAssertGreaterThan(run.metrics[0].meanLoss, 10 * last.meanLoss)
    }

    func testEveryOptimizerAndActivationLearnsTheTinyData() throws {
        let cases: [(String, String)] = [
            ("    - flatten\n    - linear: {out: 12, activation: tanh}\n    - dropout: {p: 0.1}\n    - linear: {out: 3}",
             "{kind: sgd, lr: 0.1, momentum: 0.9, nesterov: true}"),
            ("    - flatten\n    - linear: {out: 12}\n    - gelu\n    - linear: {out: 3}", "{kind: adamw, lr: 0.01}"),
            ("    - flatten\n    - linear: {out: 12, activation: sigmoid}\n    - linear: {out: 3, bias: false}", "{kind: adam, lr: 0.02}"),
            ("    - flatten\n    - linear: {out: 12, activation: leaky_relu}\n    - linear: {out: 3}", "{kind: sgd, lr: 0.1}"),
        ]
        for (layers, optimizer) in cases {
            let run = try TinyData.run(TinyData.specText(layers: layers, optimizer: optimizer), directory: directory, epochs: 40)
            XCTAssertEqual(run.metrics.last?.testAccuracy, 100, "\(layers) / \(optimizer): \(run.metrics.map(\.meanLoss))")
        }
    }

    func testSameSeedGivesBitIdenticalWeightsForAnyThreadCount() throws {
        let text = TinyData.specText(
            layers: "    - flatten\n    - linear: {out: 40, activation: relu}\n    - dropout: {p: 0.2}\n    - linear: {out: 24, activation: gelu}\n    - linear: {out: 3}")
        let digests = try [1, 2, 3, 1].map { threads in
            let run = try TinyData.run(text, directory: directory, threads: threads, epochs: 3)
            // On more than one thread every step but an epoch's first trains on a batch gathered ahead.
            let gatheredAhead = threads > 1 ? 3 * (run.trainer.stepsPerEpoch - 1) : 0
            XCTAssertEqual(run.trainer.executor.stepsWithPreparedBatch, gatheredAhead, "\(threads) threads")
            return TinyData.parameterDigest(run)
        }
        XCTAssertEqual(Set(digests).count, 1, "\(digests)")
    }

    func testDifferentSeedsGiveDifferentWeights() throws {
        let a = TinyData.parameterDigest(try TinyData.run(TinyData.specText(seed: 1), directory: directory, epochs: 1))
        let b = TinyData.parameterDigest(try TinyData.run(TinyData.specText(seed: 2), directory: directory, epochs: 1))
        XCTAssertNotEqual(a, b)
    }

    func testHugeLearningRateStopsWithTheKernelAndSpecLine() throws {
        let text = TinyData.specText(optimizer: "{kind: sgd, lr: 1.0e+30}")
        // Two threads: the report reruns the forward kernels while the next batch may be gathering.
        for threads in [1, 2] {
            XCTAssertThrowsError(try TinyData.run(text, directory: directory, threads: threads, epochs: 5)) { error in
                guard case RuntimeError.nonFinite(let epoch, let step, let kernel, _, let source) = error else {
                    return XCTFail("expected the numerics guard, got \(error)")
                }
                XCTAssertEqual(epoch, 1)
                XCTAssertGreaterThanOrEqual(step, 1)
                XCTAssertFalse(kernel.isEmpty)
                XCTAssertEqual(source?.file, "tiny.yaml")
                XCTAssertTrue("\(error)".contains("lower the learning rate"))
            }
        }
    }

    func testPartialLastBatchIsTrainedAndDropLastSkipsIt() throws {
        // 120 images at batch 50: two full batches and one of 20.
        let keep = try TinyData.run(TinyData.specText(batch: 50), directory: directory, epochs: 1)
        XCTAssertEqual(keep.trainer.stepsPerEpoch, 3)
        let text = TinyData.specText(batch: 50).replacingOccurrences(of: "  epochs: 30", with: "  epochs: 30\n  drop_last: true")
        let drop = try TinyData.run(text, directory: directory, epochs: 1)
        XCTAssertEqual(drop.trainer.stepsPerEpoch, 2)
    }

    func testValidationFractionHoldsOutTrainingImages() throws {
        let text = TinyData.specText().replacingOccurrences(of: "  normalize:", with: "  validation_fraction: 0.25\n  normalize:")
        let run = try TinyData.run(text, directory: directory, epochs: 20)
        XCTAssertEqual(run.trainer.stepsPerEpoch, 6)  // 90 of 120 images at batch 16
        XCTAssertEqual(run.metrics.last?.validationAccuracy, 100)
    }
}

final class AllocationTests: XCTestCase {
    func testTrainingStepAllocatesNothingAfterWarmUp() throws {
        guard malloc_counter_available() == 1 else { throw XCTSkip("malloc interposition is off under sanitizers") }
        let directory = try TinyData.makeDirectory(self)
        let text = TinyData.specText(
            layers: "    - flatten\n    - linear: {out: 64, activation: relu}\n    - dropout: {p: 0.2}\n    - linear: {out: 32, activation: gelu}\n    - linear: {out: 3}")
        for threads in [1, 2] {
            let (_, plan, data) = try TinyData.prepare(text, directory: directory, threads: threads)
            let pool = WorkerPool(threads: threads)
            let executor = try StepExecutor(plan: plan, kernels: kernels(for: plan.target.isa), pool: pool, dropoutSeed: 1)
            initializeParameters(plan, seed: 1, into: executor.parameters)
            let indices = (0..<Int32(plan.batchSize)).map { $0 }
            try data.train.withBatchSamples { samples in
                let samples = try XCTUnwrap(samples)
                try indices.withUnsafeBufferPointer { order in
                    // Each step names the same rows as the next batch: on two threads every step
                    // also hands the next batch's gather to the other thread.
                    let batch = StepExecutor.BatchSource(samples: samples, indices: order.baseAddress!, rows: plan.batchSize, upcoming: order)
                    for _ in 0..<3 {  // warm-up
                        _ = executor.forward(batch)
                        executor.backwardAndUpdate(rows: batch.rows)
                    }
                    malloc_counter_start()
                    for _ in 0..<50 {
                        _ = executor.forward(batch)
                        executor.backwardAndUpdate(rows: batch.rows)
                    }
                    let allocations = malloc_counter_stop()
                    XCTAssertEqual(allocations, 0, "\(threads) thread(s): \(allocations) allocations in 50 steps")
                    XCTAssertEqual(executor.stepsWithPreparedBatch, threads > 1 ? 52 : 0)
                    guard allocations == 0 else { throw TestFailure("allocations") }
                }
            }
        }
    }

    /// The arena is the only allocation that grows with the batch: building an executor for batch 8, 512
    /// and 8192 allocates the arena plus a few kilobytes of bookkeeping that do not grow (activations at
    /// batch 8192 alone would be hundreds of kilobytes).
    func testArenaIsTheOnlyAllocationThatGrowsWithTheBatch() throws {
        guard malloc_counter_available() == 1 else { throw XCTSkip("malloc interposition is off under sanitizers") }
        let directory = try TinyData.makeDirectory(self)
        let pool = WorkerPool(threads: 1)
        var overhead: [Int] = []
        // One executor first, unmeasured: what the process sets up once (the kernel table, type
        // metadata) is not what this test is about.
        let (_, warmUpPlan, _) = try TinyData.prepare(TinyData.specText(batch: 8), directory: directory)
        let set = kernels(for: warmUpPlan.target.isa)
        withExtendedLifetime(try StepExecutor(plan: warmUpPlan, kernels: set, pool: pool, dropoutSeed: 1)) {}
        for batch in [8, 512, 8192] {
            let (_, plan, _) = try TinyData.prepare(TinyData.specText(batch: batch), directory: directory)
            malloc_counter_start()
            let executor = try StepExecutor(plan: plan, kernels: set, pool: pool, dropoutSeed: 1)
            _ = malloc_counter_stop()
            let bytes = malloc_counter_bytes()
            XCTAssertGreaterThanOrEqual(bytes, plan.arenaBytes)
            overhead.append(bytes - plan.arenaBytes)
            withExtendedLifetime(executor) {}
        }
        XCTAssertLessThan(overhead.max()! - overhead.min()!, 1024, "bytes allocated besides the arena: \(overhead)")
        XCTAssertLessThan(overhead.max()!, 16 * 1024, "bytes allocated besides the arena: \(overhead)")
    }
}
