import KernelInterface
import Planner
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

/// Training with the first layer's features stored live-first (`StoredFeatureOrder`) gives every bit of
/// training without it: parameters, optimizer state, losses and accuracies, on one thread and on two.
final class FeatureOrderTrainingTests: XCTestCase {
    static let layers = "    - flatten\n    - linear: {out: 96, activation: relu}\n    - linear: {out: 3}"
    let train = LabeledImages.synthetic(count: 200, imageShape: [TinyData.side, TinyData.side], classes: TinyData.classes, seed: 4)
    let test = LabeledImages.synthetic(count: 50, imageShape: [TinyData.side, TinyData.side], classes: TinyData.classes, seed: 5)

    struct Outcome: Equatable {
        var blocks: [[UInt32]]
        var metrics: [EpochMetrics]
    }

    /// Trains three epochs with fc1 units `dead` given a bias that keeps them off, and returns every
    /// parameter and state bit and the epochs' metrics; `storedOrderSteps` counts the steps that ran
    /// with the features in another order than the model's.
    func train(threads: Int, batch: Int, optimizer: String, ordered: Bool, dead: [Int], storedOrderSteps: inout Int) throws -> Outcome {
        let plan = try TinyData.plan(
            TinyData.specText(layers: Self.layers, optimizer: optimizer, batch: batch), threads: threads,
            disabledPasses: ordered ? [] : [.liveFirstFeatures]
        ).1
        XCTAssertEqual(plan.liveFirstFeatures != nil, ordered)
        let executor = try StepExecutor(
            plan: plan, kernels: kernels(for: plan.target.isa), pool: WorkerPool(threads: threads), dropoutSeed: 3)
        XCTAssertEqual(executor.featureOrder != nil, ordered)
        // On two threads the evaluation's forward products (and with batches of 100 the training
        // step's) split the features in two.
        if let order = executor.featureOrder { XCTAssertEqual(order.shares.count, threads, "\(threads) threads, batch \(batch)") }
        initializeParameters(plan, seed: 5, into: executor.parameters)
        let bias = try XCTUnwrap(plan.parameters.first { $0.layer == "fc1" && $0.role == .bias })
        for unit in dead { executor.parameters[bias.offset + bias.storedIndex(unit)] = -1000 }
        let trainer = Trainer(
            executor: executor, train: train, test: test, seed: 9, shuffle: true, dropLast: false, validationFraction: 0)
        var steps = 0
        trainer.onStep = { _, _ in
            if let order = executor.featureOrder, !order.isIdentity { steps += 1 }
        }
        var metrics: [EpochMetrics] = []
        for epoch in 1...3 {
            var m = try trainer.runEpoch(epoch)
            (m.seconds, m.trainSeconds, m.samplesPerSecond) = (0, 0, 0)
            metrics.append(m)
        }
        storedOrderSteps = steps
        let floats = plan.parameterBlockFloats
        let blocks = [executor.parameters] + (0..<plan.optimizer.stateBlocks).map { executor.stateBlock($0) }
        return Outcome(blocks: blocks.map { block in (0..<floats).map { block[$0].bitPattern } }, metrics: metrics)
    }

    func testStoredOrderTrainsBitForBitAsTheModelsOrder() throws {
        // Units dead in both threads' shares (48 each), some in whole 16-feature vectors.
        let dead = Array(0..<20) + [23, 31, 40, 47] + Array(60..<90)
        // Batches of 100 make fc1's products large enough for two threads.
        for (threads, batch) in [(1, 16), (2, 16), (2, 100), (1, 100)] {
            for optimizer in ["{kind: adam, lr: 0.01}", "{kind: adamw, lr: 0.01, weight_decay: 0.01}", "{kind: sgd, lr: 0.05, momentum: 0.9}"] {
                let label = "\(threads) threads, batch \(batch), \(optimizer)"
                var orderedSteps = 0, plainSteps = 0
                let plain = try train(
                    threads: threads, batch: batch, optimizer: optimizer, ordered: false, dead: dead, storedOrderSteps: &plainSteps)
                let ordered = try train(
                    threads: threads, batch: batch, optimizer: optimizer, ordered: true, dead: dead, storedOrderSteps: &orderedSteps)
                XCTAssertEqual(ordered, plain, label)
                // Epochs 2 and 3 run in the stored order.
                XCTAssertEqual(orderedSteps, 2 * ((200 + batch - 1) / batch), label)
                XCTAssertEqual(plainSteps, 0)
            }
        }
    }

    /// An epoch stopped in the middle while the features are in the stored order, its parameters and
    /// moments read out (as a checkpoint reads them) into a fresh executor and continued there, ends
    /// with every bit of the epoch run straight through.
    func testAnEpochStoppedInTheStoredOrderContinuesExactly() throws {
        let dead = Array(0..<20) + Array(60..<90)
        let plan = try TinyData.plan(TinyData.specText(layers: Self.layers, batch: 100), threads: 2).1
        func executor() throws -> StepExecutor {
            let executor = try StepExecutor(
                plan: plan, kernels: kernels(for: plan.target.isa), pool: WorkerPool(threads: 2), dropoutSeed: 3)
            initializeParameters(plan, seed: 5, into: executor.parameters)
            let bias = try XCTUnwrap(plan.parameters.first { $0.layer == "fc1" && $0.role == .bias })
            for unit in dead { executor.parameters[bias.offset + bias.storedIndex(unit)] = -1000 }
            return executor
        }
        func trainer(_ executor: StepExecutor) -> Trainer {
            Trainer(executor: executor, train: train, test: test, seed: 9, shuffle: true, dropLast: false, validationFraction: 0)
        }
        func bits(_ executor: StepExecutor) -> [[UInt32]] {
            let blocks = [executor.parameters] + (0..<plan.optimizer.stateBlocks).map { executor.stateBlock($0) }
            return blocks.map { block in (0..<plan.parameterBlockFloats).map { block[$0].bitPattern } }
        }
        let straight = try executor()
        let straightTrainer = trainer(straight)
        for epoch in 1...3 { _ = try straightTrainer.runEpoch(epoch) }

        let stopped = try executor()
        let stoppedTrainer = trainer(stopped)
        for epoch in 1...2 { _ = try stoppedTrainer.runEpoch(epoch) }
        var storedOrder = false
        stoppedTrainer.stopRequested = {
            storedOrder = !(stopped.featureOrder?.isIdentity ?? true)
            return stoppedTrainer.progress.stepsDone == 1
        }
        XCTAssertThrowsError(try stoppedTrainer.runEpoch(3))
        XCTAssertTrue(storedOrder, "epoch 3 ran in the stored order")
        let progress = stoppedTrainer.progress
        XCTAssertEqual(progress.stepsDone, 1)

        let continued = try executor()
        for (index, block) in bits(stopped).enumerated() {
            let target = index == 0 ? continued.parameters : continued.stateBlock(index - 1)
            for i in block.indices { target[i] = Float(bitPattern: block[i]) }
        }
        continued.optimizerSteps = stopped.optimizerSteps
        _ = try trainer(continued).runEpoch(3, resuming: progress)
        XCTAssertEqual(bits(continued), bits(straight))
    }

    func testTheOrderPutsLiveFeaturesFirstInEveryShare() throws {
        let plan = try TinyData.plan(TinyData.specText(layers: Self.layers, batch: 128), threads: 2).1
        let executor = try StepExecutor(plan: plan, kernels: kernels(for: plan.target.isa), pool: WorkerPool(threads: 2), dropoutSeed: 3)
        let order = try XCTUnwrap(executor.featureOrder)
        XCTAssertEqual(order.shares, [0..<64, 64..<96])
        // Live: 34 of the first share's features and 26 of the second's.
        let live = Set(Array(0..<10) + Array(40..<90))
        for s in 0..<96 where live.contains(s) { order.live[s] = 1 }
        let before = (0..<plan.parameterBlockFloats).map { executor.parameters[$0] }
        executor.storeLiveFeaturesFirst()
        let stored = (0..<96).map { Int(order.modelFeature[$0]) }
        // Each share's live features first, then its idle ones, every group in the model's order.
        XCTAssertEqual(stored, Array(0..<10) + Array(40..<64) + Array(10..<40) + Array(64..<90) + Array(90..<96))
        // The parameters moved with their features, and come back in the model's order when read.
        let weight = try XCTUnwrap(plan.parameters.first { $0.layer == "fc1" && $0.role == .weight })
        let block = executor.parameterBlock
        for s in [0, 10, 33, 34, 63, 64, 95] {
            for i in [0, 17, 35] {
                XCTAssertEqual(
                    block[weight.offset + WeightPanels.offset(output: s, input: i, inFeatures: 36)],
                    before[weight.offset + WeightPanels.offset(output: stored[s], input: i, inFeatures: 36)])
            }
        }
        XCTAssertFalse(order.isIdentity)
        XCTAssertEqual((0..<plan.parameterBlockFloats).map { executor.parameters[$0] }, before)
        XCTAssertTrue(order.isIdentity)
    }

    /// What was live before `restartLivenessRecording` does not count for the next order.
    func testTheOrderGoesByTheLivenessSinceTheRestart() throws {
        let plan = try TinyData.plan(TinyData.specText(layers: Self.layers), threads: 1).1
        let executor = try StepExecutor(plan: plan, kernels: kernels(for: plan.target.isa), pool: WorkerPool(threads: 1), dropoutSeed: 3)
        let order = try XCTUnwrap(executor.featureOrder)
        for s in 0..<48 { order.live[s] = 1 }
        XCTAssertEqual(executor.featureOrderSummary?.live, 48)
        executor.restartLivenessRecording()
        XCTAssertEqual(executor.featureOrderSummary?.live, 0)
        for s in 90..<96 { order.live[s] = 1 }
        executor.storeLiveFeaturesFirst()
        XCTAssertEqual((0..<96).map { Int(order.modelFeature[$0]) }, Array(90..<96) + Array(0..<90))
        // Nothing recorded since: the model's order.
        executor.restartLivenessRecording()
        executor.storeLiveFeaturesFirst()
        XCTAssertTrue(order.isIdentity)
    }

    func testOnlyAFirstReLULayerIsStoredInAnotherOrder() throws {
        func order(_ layers: String) throws -> String? {
            let plan = try TinyData.plan(TinyData.specText(layers: layers), threads: 2).1
            return try StepExecutor(plan: plan, kernels: kernels(for: plan.target.isa), pool: WorkerPool(threads: 2), dropoutSeed: 3)
                .featureOrderSummary?.layer
        }
        XCTAssertEqual(try order(Self.layers), "fc1")
        XCTAssertNil(try order("    - flatten\n    - linear: {out: 64, activation: tanh}\n    - linear: {out: 3}"))
        XCTAssertNil(try order("    - flatten\n    - linear: {out: 64}\n    - linear: {out: 3}"))
    }
}
