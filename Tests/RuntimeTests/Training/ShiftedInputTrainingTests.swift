import KernelInterface
import Planner
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

/// Training with the input's shift absorbed into the first layer (the plan's `shiftedInput`): the
/// loops over nonzero pixels give every bit of the blocked products, on one thread and on two, with
/// and without the stored feature order; and the result is the model with the normalization applied.
final class ShiftedInputTrainingTests: XCTestCase {
    static let layers = "    - flatten\n    - linear: {out: 96, activation: relu}\n    - linear: {out: 3}"

    /// Images as MNIST's are: mostly zero. A bar of six pixels in the label's row and two scattered
    /// pixels, so at most 8 of 36 pixels are nonzero and every batch takes the pixel loops.
    static func sparseImages(count: Int, seed: UInt64) -> LabeledImages {
        var random = TestRandom(seed: seed)
        var images = [UInt8](repeating: 0, count: count * 36)
        var labels: [UInt8] = []
        for index in 0..<count {
            let label = random.int(below: TinyData.classes)
            labels.append(UInt8(label))
            let image = index * 36
            for column in 0..<6 { images[image + (2 * label + random.int(below: 2)) * 6 + column] = UInt8(100 + random.int(below: 156)) }
            for _ in 0..<2 { images[image + random.int(below: 36)] = UInt8(1 + random.int(below: 255)) }
        }
        return LabeledImages(
            images: images, labels: labels, count: count, imageShape: [TinyData.side, TinyData.side], imagesPath: "(sparse)",
            labelsPath: "(sparse)")
    }

    let train = sparseImages(count: 200, seed: 4)
    let test = sparseImages(count: 50, seed: 5)

    struct Outcome: Equatable {
        var blocks: [[UInt32]]
        var metrics: [EpochMetrics]
    }

    func train(threads: Int, batch: Int, skipsZeros: Bool, ordered: Bool) throws -> Outcome {
        var disabled: Set<PlanPass> = []
        if !skipsZeros { disabled.insert(.sparseInput) }
        if !ordered { disabled.insert(.liveFirstFeatures) }
        let plan = try TinyData.plan(TinyData.specText(layers: Self.layers, batch: batch), threads: threads, disabledPasses: disabled).1
        XCTAssertEqual(plan.shiftedInput, ShiftedInput(layer: "fc1"))
        XCTAssertEqual(plan.liveFirstFeatures != nil, ordered)
        let fc1 = plan.trainKernels.compactMap { if case .linearForward(let k) = $0, k.layer == "fc1" { return k } else { return nil } }
        XCTAssertEqual(fc1.first?.inputShift?.skipsZeroInputs, skipsZeros)
        let executor = try StepExecutor(
            plan: plan, kernels: kernels(for: plan.target.isa), pool: WorkerPool(threads: threads), dropoutSeed: 3)
        initializeParameters(plan, seed: 5, into: executor.parameters)
        let trainer = Trainer(executor: executor, train: train, test: test, seed: 9, shuffle: true, dropLast: false, validationFraction: 0)
        var metrics: [EpochMetrics] = []
        for epoch in 1...3 {
            var m = try trainer.runEpoch(epoch)
            (m.seconds, m.trainSeconds, m.samplesPerSecond) = (0, 0, 0)
            metrics.append(m)
        }
        let blocks = [executor.parameters] + (0..<plan.optimizer.stateBlocks).map { executor.stateBlock($0) }
        return Outcome(blocks: blocks.map { block in (0..<plan.parameterBlockFloats).map { block[$0].bitPattern } }, metrics: metrics)
    }

    func testPixelLoopsTrainBitForBitAsTheBlockedProducts() throws {
        // The premise: no image has more than a quarter of its pixels nonzero.
        for index in 0..<train.count {
            XCTAssertLessThanOrEqual(train.image(at: index).filter { $0 != 0 }.count, 8)
        }
        let reference = try train(threads: 1, batch: 16, skipsZeros: false, ordered: false)
        XCTAssertGreaterThan(reference.metrics.last!.testAccuracy, 90, "the tiny task is learned")
        for (threads, batch) in [(1, 16), (2, 16), (2, 100), (1, 100)] {
            for skipsZeros in [true, false] {
                for ordered in [true, false] {
                    let got = try train(threads: threads, batch: batch, skipsZeros: skipsZeros, ordered: ordered)
                    let expected = batch == 16 ? reference : try train(threads: 1, batch: batch, skipsZeros: false, ordered: false)
                    XCTAssertEqual(got, expected, "\(threads) threads, batch \(batch), skips zeros \(skipsZeros), ordered \(ordered)")
                }
            }
        }
    }

    /// The gathers write pixel * scale and the layer adds shift * its column sums: its output is the
    /// normalized input's product, to Float accuracy.
    func testTheLayerSeesTheNormalizedInput() throws {
        let plan = try TinyData.plan(TinyData.specText(layers: Self.layers, batch: 16), threads: 2).1
        let executor = try StepExecutor(plan: plan, kernels: kernels(for: plan.target.isa), pool: WorkerPool(threads: 2), dropoutSeed: 3)
        initializeParameters(plan, seed: 5, into: executor.parameters)
        let normalization = PixelNormalization(mean: 0.5, standardDeviation: 0.5)
        let weight = try XCTUnwrap(plan.parameters.first { $0.layer == "fc1" && $0.role == .weight })
        let bias = try XCTUnwrap(plan.parameters.first { $0.layer == "fc1" && $0.role == .bias })
        let rows: [Int32] = Array(0..<16)
        try rows.withUnsafeBufferPointer { indices in
            try train.images.withUnsafeBufferPointer { images in
                try train.labels.withUnsafeBufferPointer { labels in
                    let batch = StepExecutor.BatchSource(
                        images: images.baseAddress!, labels: labels.baseAddress!, features: 36, indices: indices.baseAddress!,
                        rows: 16, upcoming: UnsafeBufferPointer(start: nil, count: 0))
                    _ = executor.forward(batch)
                    // (Evaluation runs the same kernel; its classify overwrites eval.fc1.out's first row,
                    // so StateDictTests checks its logits against numpy instead.)
                    for name in ["fc1.out"] {
                        let output = try XCTUnwrap(plan.buffer(named: name))
                        let y = executor.arena.floats(output.slice)
                        for r in 0..<16 {
                            for f in 0..<96 {
                                var z = Double(executor.parameters[bias.offset + bias.storedIndex(f)]), scale = abs(z)
                                for i in 0..<36 {
                                    let x = Double(Float(train.images[r * 36 + i]) * normalization.scale + normalization.shift)
                                    let w = executor.parameters[weight.offset + WeightPanels.offset(output: f, input: i, inFeatures: 36)]
                                    z += x * Double(w)
                                    scale += abs(x * Double(w))
                                }
                                XCTAssertEqual(Double(y[r * 96 + f]), max(z, 0), accuracy: 1e-5 * scale + 1e-6, "\(name) row \(r) feature \(f)")
                            }
                        }
                    }
                }
            }
        }
    }
}
