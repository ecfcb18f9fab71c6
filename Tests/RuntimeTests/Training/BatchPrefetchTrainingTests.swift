import KernelInterface
import Planner
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

/// The training step gathers the next batch ahead on another thread (the plan's batch prefetch). These
/// check it changes no bit, that a step uses only a batch gathered from exactly its rows, and that
/// evaluation in between is safe.
final class BatchPrefetchTrainingTests: XCTestCase {
    static let layers = "    - flatten\n    - linear: {out: 24, activation: relu}\n    - dropout: {p: 0.2}\n    - linear: {out: 3}"
    let data = LabeledImages.synthetic(count: 160, imageShape: [TinyData.side, TinyData.side], classes: TinyData.classes, seed: 8)

    /// A fresh executor for a plan on `threads` threads, its parameters initialised from seed 5.
    func executor(threads: Int) throws -> StepExecutor {
        let plan = try TinyData.plan(TinyData.specText(layers: Self.layers), threads: threads).1
        let executor = try StepExecutor(
            plan: plan, kernels: kernels(for: plan.target.isa), pool: WorkerPool(threads: threads), dropoutSeed: 11)
        initializeParameters(plan, seed: 5, into: executor.parameters)
        return executor
    }

    /// Runs one step per batch; `batches[i]` are row indices, and each step names `upcoming[i]` (an
    /// index into `batches`) as the batch after it. `between` runs after each step. Returns a digest
    /// of the parameters.
    func train(
        _ executor: StepExecutor, _ batches: [[Int32]], upcoming: [Int?], between: (Int) -> Void = { _ in }
    ) -> String {
        data.images.withUnsafeBufferPointer { images in
            data.labels.withUnsafeBufferPointer { labels in
                for (step, rows) in batches.enumerated() {
                    let next = upcoming[step].map { batches[$0] } ?? []
                    rows.withUnsafeBufferPointer { indices in
                        next.withUnsafeBufferPointer { next in
                            let batch = StepExecutor.BatchSource(
                                images: images.baseAddress!, labels: labels.baseAddress!, features: data.featureCount,
                                indices: indices.baseAddress!, rows: rows.count, upcoming: next)
                            let loss = executor.forward(batch)
                            XCTAssertTrue(loss.isFinite)
                            executor.backwardAndUpdate(rows: rows.count)
                        }
                    }
                    between(step)
                }
            }
        }
        // A digest of the parameter bits: a failure message stays one line.
        let bytes = UnsafeRawBufferPointer(start: executor.parameters, count: executor.plan.parameterBlockFloats * 4)
        return SHA256.hash(Array(bytes)).hex
    }

    /// Trains `batches` naming `upcoming` on one thread and on two: the parameters must end
    /// bit-identical, and `prepared` of the two-thread steps must have found their batch gathered ahead.
    func assertSameAsOneThread(
        _ batches: [[Int32]], upcoming: [Int?], prepared: Int, _ message: String = "", line: UInt = #line
    ) throws {
        let expected = train(try executor(threads: 1), batches, upcoming: upcoming)
        let prefetching = try executor(threads: 2)
        XCTAssertTrue(prefetching.prefetchesBatches, line: line)
        XCTAssertEqual(train(prefetching, batches, upcoming: upcoming), expected, line: line)
        XCTAssertEqual(prefetching.stepsWithPreparedBatch, prepared, message, line: line)
    }

    func batches(_ count: Int, rows: Int = 16, seed: UInt64 = 3) -> [[Int32]] {
        var random = TestRandom(seed: seed)
        return (0..<count).map { _ in (0..<rows).map { _ in Int32(random.int(below: data.count)) } }
    }

    func testStepsGatheredAheadTrainExactlyAsOnOneThread() throws {
        let batches = batches(12)
        let upcoming = (0..<12).map { $0 + 1 < 12 ? $0 + 1 : nil }
        XCTAssertFalse(try executor(threads: 1).prefetchesBatches)
        try assertSameAsOneThread(batches, upcoming: upcoming, prepared: 11, "every step but the first found its batch gathered")
    }

    func testABatchOtherThanTheOneNamedIsGatheredInPlace() throws {
        // Each step names a batch that is not the one asked for next (a resumed or reordered epoch).
        let batches = batches(8)
        let wrong: [Int?] = [2, 0, 5, 1, nil, 7, 3, 0]
        try assertSameAsOneThread(batches, upcoming: wrong, prepared: 0)
    }

    func testTheSameRowsInAnotherArrayAreRecognised() throws {
        // Batch 1 and batch 2 hold the same rows; step 0 names batch 1 and step 1 is given batch 2.
        var batches = batches(3)
        batches[2] = batches[1]
        let prefetching = try executor(threads: 2)
        let got = train(prefetching, [batches[0], batches[2]], upcoming: [1, nil])
        XCTAssertEqual(prefetching.stepsWithPreparedBatch, 1)
        XCTAssertEqual(got, train(try executor(threads: 1), [batches[0], batches[1]], upcoming: [nil, nil]))
    }

    func testAPartialBatchIsGatheredAheadWithItsRows() throws {
        var batches = batches(4)
        batches[3] = Array(batches[3].prefix(5))
        try assertSameAsOneThread(batches, upcoming: [1, 2, 3, nil], prepared: 3)
    }

    func testTheNumericsReportChecksTheBuffersItsRerunWrites() throws {
        // Step 1 runs on the batch gathered ahead into the second pair. The report then reruns the
        // forward kernels on that batch: a NaN left in the first pair's input must not be blamed on it.
        let batches = batches(2)
        let prefetching = try executor(threads: 2)
        _ = train(prefetching, batches, upcoming: [1, nil])
        XCTAssertEqual(prefetching.pair, 1)
        let input = prefetching.arena.floats(prefetching.plan.buffer(named: "input")!.slice)
        input[0] = .nan
        let report = data.images.withUnsafeBufferPointer { images in
            data.labels.withUnsafeBufferPointer { labels in
                batches[1].withUnsafeBufferPointer { indices in
                    prefetching.firstNonFiniteForwardKernel(StepExecutor.BatchSource(
                        images: images.baseAddress!, labels: labels.baseAddress!, features: data.featureCount,
                        indices: indices.baseAddress!, rows: batches[1].count))
                }
            }
        }
        XCTAssertNil(report.map(\.label))
    }

    func testEvaluationBetweenStepsForgetsTheBatchGatheredAhead() throws {
        // Evaluation's buffers may reuse the bytes of the second pair: the next step gathers again.
        let batches = batches(6)
        let upcoming = (0..<6).map { $0 + 1 < 6 ? $0 + 1 : nil }
        let evalRows = (0..<Int32(data.count)).map { $0 }
        let expected = train(try executor(threads: 1), batches, upcoming: upcoming)
        let prefetching = try executor(threads: 2)
        var accuracies: [Double] = []
        let got = train(prefetching, batches, upcoming: upcoming) { step in
            if step % 2 == 0 {
                accuracies.append(evaluateClassifier(prefetching, self.data, indices: evalRows).accuracy)
            }
        }
        XCTAssertEqual(got, expected)
        XCTAssertEqual(prefetching.stepsWithPreparedBatch, 2, "steps 2 and 4; 1, 3 and 5 follow an evaluation")
        XCTAssertEqual(accuracies.count, 3)
    }
}
