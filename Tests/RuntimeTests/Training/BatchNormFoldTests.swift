import Foundation
import KernelInterface
import Planner
import SpecParser
import XCTest

@testable import Runtime
@testable import Execution

/// The fold-batch-norm pass: an evaluation with the batch norms folded into the convolution or linear
/// layer before them equals the unfolded evaluation of the same trained model within float rounding.
///
/// The bound, per output y of a folded layer (n products, scale s = gamma / sqrt(running_var + eps)):
/// each of the two evaluations is within gamma_{n+4} M of the exact value, M = |s| (sum |w x| +
/// |bias - running_mean|) + |beta|, with gamma_k = k u / (1 - k u) and u = 2^-24 (the standard a-priori
/// bound of a dot product of n terms plus the four operations after it), so they differ by at most
/// 2 gamma_{n+4} M. An activation after it (relu, 1-Lipschitz) keeps the bound.
final class BatchNormFoldTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws { directory = try TinyData.makeDirectory(self) }

    /// conv -> batch norm 2d -> relu first (its input is the gathered batch, the same in both plans).
    static let convFirst = """
            - conv2d: {out: 5, kernel: 3, padding: 1}
            - batch_norm
            - relu
            - max_pool2d: 2
            - flatten
            - linear: {out: 12, bias: false}
            - batch_norm
            - relu
            - linear: {out: 3}
        """

    /// linear -> batch norm 1d -> relu first. (The dropout keeps the first-layer passes off fc1: a
    /// linear whose features the live-first-features pass reorders is not folded.)
    static let linearFirst = """
            - flatten
            - dropout: {p: 0.1}
            - linear: {out: 20}
            - batch_norm
            - relu
            - linear: {out: 3}
        """

    func testFoldedEvaluationEqualsTheUnfoldedOneWithinRounding() throws {
        for (layers, folds) in [(Self.convFirst, ["bn1 into conv1", "bn2 into fc1"]), (Self.linearFirst, ["bn1 into fc1"])] {
            let text = TinyData.specText(layers: layers, optimizer: "{kind: adam, lr: 0.01}", batch: 16)
            let run = try TinyData.run(text, directory: directory, epochs: 3)
            let folded = run.plan
            let report = try XCTUnwrap(folded.passes.first { $0.pass == .foldBatchNorm })
            XCTAssertTrue(report.applied, report.detail)
            for name in folds { XCTAssertTrue(report.detail.contains(name), report.detail) }
            XCTAssertFalse(folded.evalKernels.contains { if case .batchNormForward = $0 { return true } else { return false } })
            XCTAssertTrue(folded.trainKernels.contains { if case .batchNormForward = $0 { return true } else { return false } })

            let (_, unfolded) = try TinyData.plan(text, dataDirectory: directory, disabledPasses: [.foldBatchNorm])
            XCTAssertEqual(unfolded.passes.first { $0.pass == .foldBatchNorm }?.applied, false)
            XCTAssertTrue(unfolded.evalKernels.contains { if case .batchNormForward = $0 { return true } else { return false } })
            let trained = run.trainer.executor
            let other = try StepExecutor(plan: unfolded, kernels: kernels(for: unfolded.target.isa), pool: WorkerPool(threads: 1), dropoutSeed: 1)
            XCTAssertEqual(unfolded.parameterBlockFloats, folded.parameterBlockFloats)
            other.parameters.update(from: trained.parameters, count: folded.parameterBlockFloats)
            other.modelState!.update(from: trained.modelState!, count: folded.modelStateFloats)

            let rows = min(folded.evalBatchSize, run.data.test.count)
            let indices = (0..<Int32(rows)).map { $0 }
            try run.data.test.withBatchSamples { samples in
                let samples = try XCTUnwrap(samples)
                try indices.withUnsafeBufferPointer { order in
                    let batch = StepExecutor.BatchSource(samples: samples, indices: order.baseAddress!, rows: rows, upcoming: order)
                    let foldedPredictions = Array(UnsafeBufferPointer(start: trained.evaluate(batch), count: rows))
                    let unfoldedPredictions = Array(UnsafeBufferPointer(start: other.evaluate(batch), count: rows))
                    try checkFirstFold(folded, trained, unfolded, other, rows: rows)
                    let classes = folded.classes
                    let a = Array(UnsafeBufferPointer(start: trained.evalLogits, count: rows * classes))
                    let b = Array(UnsafeBufferPointer(start: other.evalLogits, count: rows * classes))
                    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-4 * max(1, abs(y))) }
                    XCTAssertEqual(foldedPredictions.count, unfoldedPredictions.count)
                }
            }
        }
    }

    /// The first folded layer's output (after its activation) in both evaluations, element by element,
    /// within the bound above, computed in Double from the same batch and parameters.
    func checkFirstFold(_ folded: Plan, _ a: StepExecutor, _ unfolded: Plan, _ b: StepExecutor, rows: Int) throws {
        let fold = try XCTUnwrap(folded.evalKernels.lazy.compactMap { if case .batchNormFold(let k) = $0 { return k } else { return nil } }.first)
        let layerKernel = try XCTUnwrap(folded.evalKernels.first { $0.reads.contains(fold.foldedWeight) })
        let output = try XCTUnwrap(layerKernel.writes.first)
        let otherOutput = try XCTUnwrap(unfolded.buffers.first { $0.name == output.buffer }).slice
        let input = try XCTUnwrap(layerKernel.reads.first)
        let x = Array(UnsafeBufferPointer(start: a.arena.floats(input), count: input.elements)).map { abs(Double($0)) }
        let w = Array(UnsafeBufferPointer(start: a.arena.floats(fold.layerWeight), count: fold.layerWeight.elements)).map { abs(Double($0)) }
        let layout = fold.layout
        // sum |w x| per output: the layer's own product on absolute values.
        var sums: [Double]
        var spatial = 1
        switch layerKernel {
        case .conv2dForward(let conv):
            sums = referenceConv2d(x, w, nil, conv.geometry, batch: rows)
            spatial = conv.geometry.outPixels
        case .linearForward:
            sums = (0..<rows).flatMap { r in
                (0..<layout.channels).map { c in
                    (0..<layout.perChannel).reduce(0) { $0 + x[r * layout.perChannel + $1] * w[layout.offset(channel: c, index: $1)] }
                }
            }
        default:
            return XCTFail("fold into \(layerKernel.label)")
        }
        func values(_ slice: Slice?) -> [Double]? {
            slice.map { s in (0..<s.elements).map { Double(a.arena.floats(s)[$0]) } }
        }
        let mean = values(fold.runningMean)!, variance = values(fold.runningVar)!
        let gamma = values(fold.weight) ?? Array(repeating: 1, count: layout.channels)
        let beta = values(fold.bias) ?? Array(repeating: 0, count: layout.channels)
        let bias = values(fold.layerBias) ?? Array(repeating: 0, count: layout.channels)
        let u = 0x1p-24, n = Double(layout.perChannel + 4)
        let gammaN = n * u / (1 - n * u)
        let y = a.arena.floats(output), z = b.arena.floats(otherOutput)
        XCTAssertEqual(sums.count, rows * layout.channels * spatial)
        for i in 0..<sums.count {
            let c = (i / spatial) % layout.channels
            let scale = abs(gamma[c] / (variance[c] + Double(fold.eps)).squareRoot())
            let m = scale * (sums[i] + abs(bias[c] - mean[c])) + abs(beta[c])
            let difference = abs(Double(y[i]) - Double(z[i]))
            XCTAssertLessThanOrEqual(difference, 2 * gammaN * m, "\(output.buffer)[\(i)]: \(y[i]) folded, \(z[i]) unfolded")
        }
    }
}
