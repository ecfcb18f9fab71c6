import Foundation
import KernelInterface
import Planner
import SpecParser
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

/// How the optimizer step is shared out between threads: every parameter float once, the layers whose
/// products run on several threads split by output feature (whole weight panels) as those products
/// split them, and the result independent of the split.
final class OptimizerShareTests: XCTestCase {
    /// The reference MLP's shapes (109,386 parameters, above the one-thread limit of 65,536 floats).
    static func referencePlan(threads: Int) throws -> Plan {
        let text = """
            name: reference_shapes
            seed: 3
            data:
              dir: unused
            model:
              input_shape: [1, 28, 28]
              layers:
                - flatten
                - linear: {out: 128, activation: relu}
                - linear: {out: 64, activation: relu}
                - linear: {out: 10}
            loss: cross_entropy
            optimizer: {kind: adam, lr: 0.001}
            training:
              batch_size: 64
              epochs: 1
            """
        return try TinyData.plan(text, path: "reference.yaml", threads: threads).1
    }

    func testEveryParameterFloatIsInExactlyOneShare() throws {
        for threads in [1, 2, 3, 4] {
            let plan = try Self.referencePlan(threads: threads)
            let shares = optimizerShares(plan, parts: threads)
            XCTAssertEqual(shares.count, threads)
            var seen = [Int](repeating: 0, count: plan.parameterBlockFloats)
            for share in shares {
                for range in share {
                    XCTAssertFalse(range.isEmpty, "\(threads) threads: an empty range")
                    for i in range { seen[i] += 1 }
                }
            }
            XCTAssertEqual(Set(seen), [1], "\(threads) threads")
        }
    }

    func testSplitLayersAreSharedByTheOutputFeaturesTheirProductsOwn() throws {
        let plan = try Self.referencePlan(threads: 2)
        let shares = optimizerShares(plan, parts: 2)
        let weight = try XCTUnwrap(plan.parameters.first { $0.name == "fc1.weight" })
        let bias = try XCTUnwrap(plan.parameters.first { $0.name == "fc1.bias" })
        for part in 0..<2 {
            let features = outputFeatureShare(outFeatures: 128, part: part, parts: 2)
            XCTAssertEqual(features, (64 * part)..<(64 * part + 64))
            // Features 64p..<64p+64 are panels 2p and 2p+1: 64 x 784 contiguous floats.
            let weightFloats = (weight.offset + part * 64 * 784)..<(weight.offset + (part + 1) * 64 * 784)
            let biasFloats = (bias.offset + features.lowerBound)..<(bias.offset + features.upperBound)
            XCTAssertTrue(shares[part].contains(weightFloats), "part \(part): \(shares[part])")
            XCTAssertTrue(shares[part].contains(biasFloats), "part \(part): \(shares[part])")
        }
    }

    func testSmallBlocksAreOnePartsWork() throws {
        let plan = try TinyData.plan(TinyData.specText(), threads: 2).1
        let step = try XCTUnwrap(plan.trainKernels.last)
        XCTAssertEqual(step.label, "adam_step")
        XCTAssertEqual(plan.threads(of: step), 1)
        XCTAssertEqual(optimizerShares(plan, parts: 1), [[0..<plan.parameterBlockFloats]])
        let reference = try Self.referencePlan(threads: 2)
        XCTAssertEqual(reference.threads(of: try XCTUnwrap(reference.trainKernels.last)), 2)
    }

    /// Steps of the reference shapes on random images give the same parameter bits on 1, 2 and 3
    /// threads: the products split by output feature and the optimizer by its shares.
    func testReferenceShapesTrainBitIdenticallyOnAnyThreadCount() throws {
        var digests: [Int: [UInt32]] = [:]
        for threads in [1, 2, 3] {
            let plan = try Self.referencePlan(threads: threads)
            let images = LabeledImages.synthetic(count: 256, imageShape: [28, 28], classes: 10, seed: 9)
            let benchmark = try StepBenchmark(
                plan: plan, kernels: kernels(for: plan.target.isa), pool: WorkerPool(threads: threads), data: images, seed: 4)
            _ = benchmark.run(warmupSteps: 3, measuredSteps: 2)
            let parameters = benchmark.executor.parameters
            digests[threads] = (0..<plan.parameterBlockFloats).map { parameters[$0].bitPattern }
            XCTAssertTrue((0..<plan.parameterBlockFloats).allSatisfy { parameters[$0].isFinite })
        }
        XCTAssertEqual(digests[2], digests[1])
        XCTAssertEqual(digests[3], digests[1])
    }
}
