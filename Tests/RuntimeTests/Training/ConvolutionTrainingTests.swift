import Foundation
import KernelInterface
import MallocCounter
import Planner
import SpecParser
import XCTest

@testable import Runtime
@testable import Files
@testable import DataSources
@testable import Execution

/// Convolutional networks end to end on the tiny 6x6 dataset: they learn; their bits do not depend on
/// the thread count or kernel set; a step allocates nothing; a resumed run ends bit-identical; and the
/// weights file, read by numpy alone, gives mlpc's logits (batch norm's running statistics included).
final class ConvolutionTrainingTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = try TinyData.makeDirectory(self) }

    /// conv (same padding, fused relu) -> batch norm 2d -> max pool -> conv (stride 2... groups 2) ->
    /// avg pool -> flatten -> dropout -> linear -> batch norm 1d -> linear.
    static let layers = """
            - conv2d: {out: 4, kernel: 3, padding: same, activation: relu}
            - batch_norm
            - max_pool2d: {kernel: 2, stride: 1}
            - conv2d: {out: 6, kernel: 3, groups: 2, padding: 1}
            - relu
            - avg_pool2d: {kernel: 2, ceil_mode: true}
            - flatten
            - dropout: {p: 0.2}
            - linear: {out: 12}
            - batch_norm
            - relu
            - linear: {out: 3}
        """

    static var text: String { TinyData.specText(layers: layers, optimizer: "{kind: adam, lr: 0.01}", batch: 16) }

    func testTinyCNNLearnsAndRunningStatisticsMove() throws {
        let run = try TinyData.run(Self.text, directory: directory, epochs: 12)
        let last = try XCTUnwrap(run.metrics.last)
        XCTAssertGreaterThan(last.testAccuracy, 90, "\(run.metrics.map(\.testAccuracy))")
        XCTAssertLessThan(last.meanLoss, run.metrics[0].meanLoss / 3)
        let state = try XCTUnwrap(run.trainer.executor.modelState)
        let tracked = try XCTUnwrap(run.plan.modelState.first { $0.name == "bn1.num_batches_tracked" })
        // 120 samples, batch 16, no drop_last: 8 steps an epoch.
        XCTAssertEqual(state[tracked.offset], Float(12 * 8))
        let variance = try XCTUnwrap(run.plan.modelState.first { $0.name == "bn2.running_var" })
        XCTAssertNotEqual(state[variance.offset], 1, "the running variance moved from its initial 1")
    }

    func testBitsDoNotDependOnThreadsOrKernelSet() throws {
        let reference = TinyData.parameterDigest(try TinyData.run(Self.text, directory: directory, threads: 1, epochs: 2))
        for isa in KernelISA.allCases where CPUFeatures.current().supports(isa) {
            for threads in [1, 2] {
                let run = try TinyData.run(Self.text, directory: directory, threads: threads, epochs: 2, isa: isa)
                XCTAssertEqual(TinyData.parameterDigest(run), reference, "\(isa), \(threads) threads")
            }
        }
    }

    /// pool-relu-backward keeps every bit: a 2x2 / 2 max pool (the derivative from the pooled values)
    /// and an overlapping 3x3 / 1 one (from the ReLU output) after ReLUs, the pass on and off, on one
    /// and two threads and every kernel set.
    func testPoolReluBackwardKeepsTheBits() throws {
        let layers = """
                - conv2d: {out: 4, kernel: 3, padding: same, activation: relu}
                - max_pool2d: 2
                - conv2d: {out: 5, kernel: 2, padding: 1}
                - relu
                - max_pool2d: {kernel: 3, stride: 1}
                - flatten
                - linear: {out: 3}
            """
        let text = TinyData.specText(layers: layers, optimizer: "{kind: adam, lr: 0.01}", batch: 16)
        let reference = try TinyData.run(text, directory: directory, threads: 1, epochs: 2, disabledPasses: [.poolReluBackward])
        XCTAssertFalse(reference.plan.trainKernels.contains { if case .pool2dBackward(let k) = $0 { return k.reluValues != nil } else { return false } })
        for isa in KernelISA.allCases where CPUFeatures.current().supports(isa) {
            for threads in [1, 2] {
                let run = try TinyData.run(text, directory: directory, threads: threads, epochs: 2, isa: isa)
                let fused = run.plan.trainKernels.compactMap { if case .pool2dBackward(let k) = $0 { return k } else { return nil } }
                XCTAssertEqual(fused.map(\.reluValuesArePooled), [false, true])
                XCTAssertEqual(fused.map { $0.reluValues?.buffer }, ["conv2.out", "max_pool1.out"])
                XCTAssertEqual(TinyData.parameterDigest(run), TinyData.parameterDigest(reference), "\(isa), \(threads) threads")
            }
        }
    }

    func testResumingAtAnEpochBoundaryEndsBitIdentical() throws {
        let reference = try TinyData.run(Self.text, directory: directory, epochs: 3)
        let out = try makeTemporaryDirectory(self, "mlpc-cnn-ckpt")
        func fresh() throws -> TrainingRun {
            let (spec, plan, data) = try TinyData.prepare(Self.text, directory: directory)
            return try TrainingRun(
                spec: spec, plan: plan, kernels: kernels(for: plan.target.isa), data: data,
                options: .init(epochs: 3, seed: spec.seed.value, outputDirectory: out, mlpcVersion: "test"))
        }
        let first = try fresh()
        try first.prepareOutput()
        _ = try first.runEpoch(1)
        let second = try fresh()
        try second.resume(from: Checkpoint.read(path: first.checkpointPath, plan: second.plan), path: first.checkpointPath)
        try second.prepareOutput()
        for epoch in second.nextEpoch...3 { _ = try second.runEpoch(epoch) }
        XCTAssertEqual(TinyData.parameterDigest(second), TinyData.parameterDigest(reference))
        let a = try XCTUnwrap(second.trainer.executor.modelState), b = try XCTUnwrap(reference.trainer.executor.modelState)
        XCTAssertEqual(
            (0..<second.plan.modelStateFloats).map { a[$0].bitPattern }, (0..<reference.plan.modelStateFloats).map { b[$0].bitPattern },
            "the running statistics continue from the checkpoint")
        XCTAssertEqual(second.metrics.map(\.testAccuracy), reference.metrics.map(\.testAccuracy))
    }

    func testTrainingStepAllocatesNothing() throws {
        guard malloc_counter_available() == 1 else { throw XCTSkip("malloc interposition is off under sanitizers") }
        for threads in [1, 2] {
            let (_, plan, data) = try TinyData.prepare(Self.text, directory: directory, threads: threads)
            let pool = WorkerPool(threads: threads)
            let executor = try StepExecutor(plan: plan, kernels: kernels(for: plan.target.isa), pool: pool, dropoutSeed: 1)
            initializeParameters(plan, seed: 1, into: executor.parameters)
            let indices = (0..<Int32(plan.batchSize)).map { $0 }
            try data.train.withBatchSamples { samples in
                let samples = try XCTUnwrap(samples)
                try indices.withUnsafeBufferPointer { order in
                    let batch = StepExecutor.BatchSource(samples: samples, indices: order.baseAddress!, rows: plan.batchSize, upcoming: order)
                    for _ in 0..<3 {
                        _ = executor.forward(batch)
                        executor.backwardAndUpdate(rows: batch.rows)
                    }
                    malloc_counter_start()
                    for _ in 0..<20 {
                        _ = executor.forward(batch)
                        executor.backwardAndUpdate(rows: batch.rows)
                    }
                    let allocations = malloc_counter_stop()
                    XCTAssertEqual(allocations, 0, "\(threads) thread(s): \(allocations) allocations in 20 steps")
                }
            }
        }
    }

    /// The weights file holds PyTorch's state_dict (conv weights [out, in/groups, kh, kw], the batch
    /// norms' running statistics); numpy's forward pass of a model built from it alone, in evaluation
    /// mode, gives mlpc's logits.
    func testNumpyForwardPassOfTheWeightsFileGivesMlpcsLogits() throws {
        let run = try TinyData.run(Self.text, directory: directory, epochs: 3)
        let scratch = try makeTemporaryDirectory(self, "mlpc-cnn-files")
        let weightsPath = scratch + "/weights.safetensors", modelPath = scratch + "/model.safetensors"
        let parameters = UnsafePointer(run.trainer.executor.parameters)
        let state = run.trainer.executor.modelState.map { UnsafePointer($0) }
        try writeWeightsFile(plan: run.plan, parameters: parameters, modelState: state, to: weightsPath)
        try writeModelFile(
            spec: run.spec, plan: run.plan, parameters: parameters, modelState: state, dataDirectory: directory, mlpcVersion: "test",
            to: modelPath)
        let file = try SafetensorsFile.read(path: weightsPath)
        XCTAssertEqual(file.tensor(named: "conv2.weight")?.shape, [6, 2, 3, 3])
        XCTAssertEqual(file.tensor(named: "bn1.running_mean")?.shape, [4])
        XCTAssertEqual(file.tensor(named: "bn2.num_batches_tracked")?.shape, [])
        XCTAssertEqual(file.tensor(named: "bn2.num_batches_tracked")?.values, [24])
        let model = try LoadedModel(path: modelPath, kernels: kernels(for: run.plan.target.isa))
        let test = run.data.test
        let rows = [0, 1, 2, 7]
        let imagesPath = scratch + "/images.u8"
        try Data(rows.flatMap { test.pixels(at: $0)! }).write(to: URL(fileURLWithPath: imagesPath))
        let script = """
            import sys, numpy as np
            from safetensors.numpy import load_file
            w = {k: v.astype(np.float64) for k, v in load_file(sys.argv[1]).items()}
            x = np.fromfile(sys.argv[2], dtype=np.uint8).reshape(-1, 1, 6, 6).astype(np.float64)
            x = (x / 255.0 - 0.5) / 0.5
            def conv(x, wt, b, pad, groups):
                n, c, h, wd = x.shape; o, cg, kh, kw = wt.shape
                x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
                oh, ow = x.shape[2] - kh + 1, x.shape[3] - kw + 1
                y = np.zeros((n, o, oh, ow)); og = o // groups
                for oc in range(o):
                    g = oc // og
                    for i in range(kh):
                        for j in range(kw):
                            y[:, oc] += np.einsum('nchw,c->nhw', x[:, g * cg:(g + 1) * cg, i:i + oh, j:j + ow], wt[oc, :, i, j])
                return y + (b[None, :, None, None] if b is not None else 0)
            def bn(x, p):
                shape = (1, -1) + (1,) * (x.ndim - 2)
                return (x - w[p + '.running_mean'].reshape(shape)) / np.sqrt(w[p + '.running_var'].reshape(shape) + 1e-5) * w[p + '.weight'].reshape(shape) + w[p + '.bias'].reshape(shape)
            def pool(x, k, s, mode):
                n, c, h, wd = x.shape
                oh = -(-(h - k) // s) + 1 if mode == 'avg' else (h - k) // s + 1
                ow = -(-(wd - k) // s) + 1 if mode == 'avg' else (wd - k) // s + 1
                y = np.zeros((n, c, oh, ow))
                for i in range(oh):
                    for j in range(ow):
                        win = x[:, :, i * s:min(i * s + k, h), j * s:min(j * s + k, wd)]
                        y[:, :, i, j] = win.max(axis=(2, 3)) if mode == 'max' else win.sum(axis=(2, 3)) / (win.shape[2] * win.shape[3])
                return y
            h = np.maximum(conv(x, w['conv1.weight'], w['conv1.bias'], 1, 1), 0)
            h = pool(bn(h, 'bn1'), 2, 1, 'max')
            h = pool(np.maximum(conv(h, w['conv2.weight'], w['conv2.bias'], 1, 2), 0), 2, 2, 'avg')
            h = h.reshape(len(h), -1)
            h = np.maximum(bn(h @ w['fc1.weight'].T + w['fc1.bias'], 'bn2'), 0)
            logits = h @ w['fc2.weight'].T + w['fc2.bias']
            for row in logits: print(' '.join(repr(float(v)) for v in row))
            """
        let result = try StateDictTests.runPython3(script, arguments: [weightsPath, imagesPath])
        XCTAssertEqual(result.status, 0, "python3 needs safetensors and numpy (scripts/test installs them): \(result.error)")
        let lines = result.output.split(separator: "\n")
        XCTAssertEqual(lines.count, rows.count)
        for (line, row) in zip(lines, rows) {
            let numpyLogits = line.split(separator: " ").compactMap { Float(String($0)) }
            let mlpc = try model.classify(pixels: test.pixels(at: row)!)
            XCTAssertEqual(numpyLogits.count, 3)
            for (a, b) in zip(numpyLogits, mlpc.scores) { XCTAssertEqual(a, b, accuracy: 1e-4 * max(1, abs(b)), "row \(row)") }
        }
    }
}
