import Foundation
import KernelInterface
import Planner
import SpecParser
import XCTest

@testable import Runtime
@testable import Files
@testable import DataSources
@testable import Execution

/// Batch norm's state as PyTorch keeps it: num_batches_tracked written as int64 (and older files with
/// F32 still loading), `momentum: null`'s cumulative average, and the refusal of a training batch of
/// one row after a linear.
final class BatchNormStateTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = try TinyData.makeDirectory(self) }

    static let layers = """
            - conv2d: {out: 3, kernel: 3, padding: 1}
            - batch_norm
            - relu
            - flatten
            - linear: {out: 8}
            - batch_norm: {momentum: null}
            - relu
            - linear: {out: 3}
        """

    func testNumBatchesTrackedIsInt64InTheWeightsFileAndAnOlderF32OneStillLoads() throws {
        let run = try TinyData.run(TinyData.specText(layers: Self.layers, batch: 16), directory: directory, epochs: 1)
        let scratch = try makeTemporaryDirectory(self, "mlpc-bn-state")
        let path = scratch + "/weights.safetensors"
        let parameters = UnsafePointer(run.trainer.executor.parameters)
        let state = try XCTUnwrap(run.trainer.executor.modelState)
        try writeWeightsFile(plan: run.plan, parameters: parameters, modelState: UnsafePointer(state), to: path)
        let file = try SafetensorsFile.read(path: path)
        // 120 samples in batches of 16: 8 steps.
        for name in ["bn1.num_batches_tracked", "bn2.num_batches_tracked"] {
            XCTAssertEqual(file.tensor(named: name)?.dtype, .i64, name)
            XCTAssertEqual(file.tensor(named: name)?.values, [8], name)
        }
        XCTAssertEqual(file.tensor(named: "bn1.running_mean")?.dtype, .f32)
        let script = """
            import sys
            from safetensors.numpy import load_file
            w = load_file(sys.argv[1])
            print(w['bn1.num_batches_tracked'].dtype, w['bn1.num_batches_tracked'].shape, int(w['bn1.num_batches_tracked']), w['bn1.running_mean'].dtype)
            """
        let result = try StateDictTests.runPython3(script, arguments: [path])
        XCTAssertEqual(result.status, 0, "python3 needs safetensors and numpy (scripts/test installs them): \(result.error)")
        XCTAssertEqual(result.output.trimmingCharacters(in: .whitespacesAndNewlines), "int64 () 8 float32")

        // The same file as mlpc wrote it before: every tensor F32. It loads, counts included.
        var older = file
        for i in older.tensors.indices { older.tensors[i].dtype = .f32 }
        let olderPath = scratch + "/older.safetensors"
        try older.write(to: olderPath)
        XCTAssertTrue(try String(contentsOfFile: olderPath, encoding: .isoLatin1).contains(#""bn1.num_batches_tracked":{"dtype":"F32""#))
        let executor = try StepExecutor(plan: run.plan, kernels: kernels(for: run.plan.target.isa), pool: WorkerPool(threads: 1), dropoutSeed: 1)
        try loadParameters(path: olderPath, plan: run.plan, into: executor)
        let tracked = try XCTUnwrap(run.plan.modelState.first { $0.name == "bn2.num_batches_tracked" })
        XCTAssertEqual(executor.modelState?[tracked.offset], 8)

        // A parameter stored as I64 is not a file mlpc wrote: refused, named.
        var wrong = file
        let index = try XCTUnwrap(wrong.tensors.firstIndex { $0.name == "fc1.bias" })
        wrong.tensors[index].values = wrong.tensors[index].values.map { $0.rounded() }
        wrong.tensors[index].dtype = .i64
        let wrongPath = scratch + "/wrong.safetensors"
        try wrong.write(to: wrongPath)
        XCTAssertThrowsError(try loadParameters(path: wrongPath, plan: run.plan, into: executor)) { error in
            XCTAssertTrue("\(error)".contains("fc1.bias: the file has I64 values, expected F32"), "\(error)")
        }
    }

    /// momentum: null: after each training batch the running mean is the average of the batch means so far
    /// (PyTorch's factor 1 / num_batches_tracked), while momentum 0.1 moves a tenth of the way.
    func testMomentumNullKeepsTheCumulativeAverageOfTheBatchMeans() throws {
        let (_, plan, data) = try TinyData.prepare(TinyData.specText(layers: Self.layers, batch: 16), directory: directory)
        let executor = try StepExecutor(plan: plan, kernels: kernels(for: plan.target.isa), pool: WorkerPool(threads: 1), dropoutSeed: 1)
        initializeParameters(plan, seed: 3, into: executor.parameters)
        let state = try XCTUnwrap(executor.modelState)
        func values(_ name: String) throws -> [Double] {
            let tensor = try XCTUnwrap(plan.modelState.first { $0.name == name })
            return (0..<tensor.count).map { Double(state[tensor.offset + $0]) }
        }
        func batchMean(_ layer: String) throws -> [Double] {
            let buffer = try XCTUnwrap(plan.buffer(named: "\(layer).batch_mean"))
            return (0..<buffer.elements).map { Double(executor.arena.floats(buffer.slice)[$0]) }
        }
        var sums = [Double](repeating: 0, count: 8), expectedFixed = [Double](repeating: 0, count: 3)
        try data.train.withBatchSamples { samples in
            let samples = try XCTUnwrap(samples)
            for step in 0..<4 {
                let indices = (0..<Int32(16)).map { Int32(step * 16) + $0 }
                try indices.withUnsafeBufferPointer { order in
                    let batch = StepExecutor.BatchSource(samples: samples, indices: order.baseAddress!, rows: 16, upcoming: order)
                    _ = executor.forward(batch)
                    let means = try batchMean("bn2")
                    for c in 0..<8 { sums[c] += means[c] }
                    let fixed = try batchMean("bn1")
                    for c in 0..<3 { expectedFixed[c] = 0.9 * expectedFixed[c] + 0.1 * fixed[c] }
                    let running = try values("bn2.running_mean")
                    for c in 0..<8 {
                        let expected = sums[c] / Double(step + 1)
                        XCTAssertEqual(running[c], expected, accuracy: 1e-5 * max(1, abs(expected)), "step \(step) channel \(c)")
                    }
                    let runningFixed = try values("bn1.running_mean")
                    for c in 0..<3 { XCTAssertEqual(runningFixed[c], expectedFixed[c], accuracy: 1e-5 * max(1, abs(expectedFixed[c]))) }
                    XCTAssertEqual(try values("bn2.num_batches_tracked"), [Double(step + 1)])
                }
            }
        }
    }

    /// 120 training examples in batches of 17 leave a last batch of one row: a batch_norm after a linear
    /// would divide 0 by 0 there, so the run refuses to start, naming the layer, the sizes and the fixes.
    func testALastTrainingBatchOfOneRowBeforeA1dBatchNormIsRefusedBeforeTraining() throws {
        let text = TinyData.specText(layers: Self.layers, batch: 17)
        XCTAssertThrowsError(try TinyData.run(text, directory: directory, epochs: 1)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix("tiny.yaml:14:"), message)
            XCTAssertTrue(message.contains("batch_norm layer 'bn2' would train on a last batch of 1 row"), message)
            XCTAssertTrue(message.contains("120 training examples, batch_size 17: 120 % 17 = 1"), message)
            XCTAssertTrue(message.contains("set `drop_last: true`, or a batch_size whose last batch is not 1 row (18)"), message)
        }
        // With drop_last the one row is skipped; a batch norm after a convolution has 36 values per row.
        let dropped = text.replacingOccurrences(of: "  batch_size: 17\n", with: "  batch_size: 17\n  drop_last: true\n")
        XCTAssertNoThrow(try TinyData.run(dropped, directory: directory, epochs: 1))
        let convOnly = TinyData.specText(layers: "    - conv2d: {out: 3, kernel: 3}\n    - batch_norm\n    - flatten\n    - linear: {out: 3}", batch: 17)
        XCTAssertNoThrow(try TinyData.run(convOnly, directory: directory, epochs: 1))
    }

    /// `mlpc check` with the data says the same, as E0406 at the batch_norm with a note at batch_size.
    func testTheDataCheckReportsTheOneRowBatchAtTheBatchNorm() throws {
        let (spec, plan) = try TinyData.plan(TinyData.specText(layers: Self.layers, batch: 17), dataDirectory: directory)
        let error = try XCTUnwrap(dataDiagnostics(spec: spec, plan: plan).first { $0.code == "E0406" })
        XCTAssertEqual(error.location?.line, 14)
        XCTAssertTrue(error.message.contains("batch_norm layer 'bn2' would train on a last batch of 1 row"), error.message)
        XCTAssertEqual(error.notes.first?.location, spec.training.batchSize.location)
        let (fine, finePlan) = try TinyData.plan(TinyData.specText(layers: Self.layers, batch: 16), dataDirectory: directory)
        XCTAssertFalse(dataDiagnostics(spec: fine, plan: finePlan).contains { $0.code == "E0406" })
    }
}
