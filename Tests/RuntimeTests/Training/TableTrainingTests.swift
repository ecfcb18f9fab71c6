import Foundation
import KernelInterface
import MallocCounter
import Planner
import SpecParser
import XCTest

@testable import DataSources
@testable import Execution
@testable import Runtime

/// A table's training step: float32 rows and a regressor's target rows gathered, nothing allocated.
final class TableTrainingTests: XCTestCase {
    func testATableRegressorStepAllocatesNothingAfterWarmUp() throws {
        guard malloc_counter_available() == 1 else { throw XCTSkip("malloc interposition is off under sanitizers") }
        let folder = try makeTemporaryDirectory(self, "mlpc-table-step")
        let rows = (0..<256).map { "\(Double($0) / 10),\($0 % 3 == 0 ? "a" : "b"),\(Double($0) / 5 + 1),\(Double($0 % 7))" }
        try ("x,c,y,z\n" + rows.joined(separator: "\n") + "\n").write(toFile: folder + "/t.csv", atomically: true, encoding: .utf8)
        let text = """
            name: t
            data: {format: csv, train: t.csv, test_fraction: 0.25, target: {columns: [y, z], type: number}, columns: {x: number, c: category}}
            model: {layers: [linear: {out: 16, activation: relu}, linear: {out: 2}]}
            loss: huber
            optimizer: adam
            training: {batch_size: 32, epochs: 1}

            """
        for threads in [1, 2] {
            var spec = try XCTUnwrap(SpecLoader.parse(bytes: Array(text.utf8), path: folder + "/t.yaml").spec)
            let (table, diagnostics) = loadTableForSpec(&spec)
            XCTAssertFalse(diagnostics.hasErrors, "\(diagnostics)")
            let data = try XCTUnwrap(table).data
            let (plan, planDiagnostics) = makePlan(spec, target: hostTarget(threads: threads, isa: CPUFeatures.current().bestISA))
            let checkedPlan = try XCTUnwrap(plan, "\(planDiagnostics)")
            XCTAssertTrue(checkedPlan.isRegression)
            try checkDataset(data.train, fits: checkedPlan)
            let pool = WorkerPool(threads: threads)
            let executor = try StepExecutor(plan: checkedPlan, kernels: kernels(for: checkedPlan.target.isa), pool: pool, dropoutSeed: 1)
            initializeParameters(checkedPlan, seed: 1, into: executor.parameters)
            let indices = (0..<Int32(checkedPlan.batchSize)).map { $0 }
            try data.train.withBatchSamples { samples in
                let samples = try XCTUnwrap(samples)
                XCTAssertNotNil(samples.targetValues)
                indices.withUnsafeBufferPointer { order in
                    let batch = StepExecutor.BatchSource(samples: samples, indices: order.baseAddress!, rows: checkedPlan.batchSize, upcoming: order)
                    for _ in 0..<3 {
                        _ = executor.forward(batch)
                        executor.backwardAndUpdate(rows: batch.rows)
                    }
                    malloc_counter_start()
                    var loss: Float = 0
                    for _ in 0..<50 {
                        loss = executor.forward(batch)
                        executor.backwardAndUpdate(rows: batch.rows)
                    }
                    let allocations = malloc_counter_stop()
                    XCTAssertEqual(allocations, 0, "\(threads) thread(s): \(allocations) allocations in 50 steps")
                    XCTAssertTrue(loss.isFinite && loss > 0)
                }
            }
        }
    }
}
