import KernelInterface
import SpecParser
import XCTest

@testable import Planner

/// A plan for N ranks: each rank's buffers hold its share of the batch, the gradient buffer carries the
/// allreduce's trailer, the split covers every row once, and what one process would plan is unchanged.
final class DataParallelPlanTests: XCTestCase {
    typealias F = SpecFixtures

    func plan(ranks: Int, batch: Int = 64) throws -> Plan {
        var spec = F.reference
        spec.training.batchSize.value = batch
        let (plan, diagnostics) = makePlan(spec, target: .reference, options: PlanOptions(ranks: ranks))
        XCTAssertFalse(diagnostics.hasErrors, "\(diagnostics)")
        let made = try XCTUnwrap(plan)
        XCTAssertEqual(verify(made), [])
        return made
    }

    func testOneRankPlansExactlyAsBefore() throws {
        let one = try plan(ranks: 1)
        XCTAssertNil(one.dataParallel)
        XCTAssertEqual(one.globalBatchSize, one.batchSize)
        XCTAssertEqual(one.buffer(named: "gradients")?.elements, one.parameterBlockFloats)
        var withoutRanks = one
        withoutRanks.options = PlanOptions(disabledPasses: [])
        XCTAssertEqual(one, withoutRanks)
    }

    func testEachRankPlansItsShareAndTheAllreduceCarriesTheTrailer() throws {
        let three = try plan(ranks: 3)
        let parallel = try XCTUnwrap(three.dataParallel)
        XCTAssertEqual(parallel.ranks, 3)
        XCTAssertEqual(parallel.globalBatchSize, 64)
        XCTAssertEqual(three.batchSize, 22, "the largest share of 64 rows over 3 ranks")
        XCTAssertEqual(three.globalBatchSize, 64)
        XCTAssertEqual(three.buffer(named: "input")?.shape.first, 22)
        XCTAssertEqual(parallel.trailerOffset, three.parameterBlockFloats)
        XCTAssertEqual(parallel.allreduceFloats, three.parameterBlockFloats + DataParallel.trailerFloats)
        XCTAssertEqual(three.buffer(named: "gradients")?.elements, parallel.allreduceFloats)
        // The optimizer reads the gradient block, not the trailer.
        for kernel in three.trainKernels {
            if case .optimizerStep(let k) = kernel { XCTAssertEqual(k.gradients.elements, three.parameterBlockFloats) }
        }
        // Every pass applies as for one process: the ranks agree on the live-first order at run time.
        // (The MLP has no pooling and no batch norm to fold.)
        XCTAssertEqual(three.passes.map(\.applied), [true, true, false, true, true, false])
        XCTAssertEqual(try JSONDecoder().decode(Plan.self, from: JSONEncoder().encode(three)), three)
    }

    func testTheModelStateTravelsBehindTheTrailer() throws {
        let loaded = SpecLoader.parse(
            bytes: Array(ConvolutionPlanTests.yaml("- flatten\n- linear: {out: 32}\n- batch_norm\n- linear: {out: 10}", input: "[1, 28, 28]", batch: 64).utf8),
            path: "bn.yaml")
        let spec = try XCTUnwrap(loaded.spec, "\(loaded.diagnostics)")
        let (made, diagnostics) = makePlan(spec, target: .reference, options: PlanOptions(ranks: 2))
        let bn = try XCTUnwrap(made, "\(diagnostics)")
        let parallel = try XCTUnwrap(bn.dataParallel)
        XCTAssertGreaterThanOrEqual(bn.modelStateFloats, 64, "running mean and variance of 32 features")
        XCTAssertEqual(parallel.modelStateOffset, bn.parameterBlockFloats + DataParallel.trailerFloats)
        XCTAssertGreaterThanOrEqual(parallel.allreduceFloats, parallel.modelStateOffset! + bn.modelStateFloats)
        XCTAssertEqual(parallel.allreduceFloats % 16, 0)
        XCTAssertEqual(bn.buffer(named: "gradients")?.elements, parallel.allreduceFloats)
        XCTAssertEqual(verify(bn), [])
        XCTAssertTrue(PlanText.dataParallel(bn).contains("then the model state's"), PlanText.dataParallel(bn))
        // Without state nothing follows the trailer.
        XCTAssertNil(try plan(ranks: 2).dataParallel?.modelStateOffset)
    }

    func testTheSharesCoverEveryRowOnceInRankOrder() {
        for ranks in 1...5 {
            let parallel = DataParallel(ranks: ranks, globalBatchSize: 64, allreduceFloats: 16, trailerOffset: 0, allreducesPerStep: 1)
            for rows in 0...70 {
                let shares = (0..<ranks).map { parallel.share(rows: rows, rank: $0) }
                XCTAssertEqual(shares.first?.lowerBound, 0)
                XCTAssertEqual(shares.last?.upperBound, rows)
                for (a, b) in zip(shares, shares.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
                XCTAssertLessThanOrEqual(shares.map(\.count).max()! - shares.map(\.count).min()!, 1)
            }
        }
    }

    func testTheAllreduceEstimateIsTheRingCost() {
        let parallel = DataParallel(ranks: 4, globalBatchSize: 64, allreduceFloats: 250_000, trailerOffset: 0, allreducesPerStep: 1)
        // 1 MB; a ring moves 2 * 3/4 of it each way in 6 messages: 1.5 MB at 1 GB/s is 1.5 ms, plus 6 * 10 us.
        XCTAssertEqual(parallel.allreduceSeconds(bitsPerSecond: 8e9, latencySeconds: 10e-6), 0.0015 + 60e-6, accuracy: 1e-12)
        let one = DataParallel(ranks: 1, globalBatchSize: 64, allreduceFloats: 250_000, trailerOffset: 0, allreducesPerStep: 1)
        XCTAssertEqual(one.allreduceSeconds(bitsPerSecond: 8e9, latencySeconds: 10e-6), 0)
    }

    func testOptionsFromBeforeRanksDecodeAsOneProcess() throws {
        let options = try JSONDecoder().decode(PlanOptions.self, from: Data(#"{"disabledPasses": ["sparse-input"]}"#.utf8))
        XCTAssertEqual(options, PlanOptions(disabledPasses: [.sparseInput], ranks: 1))
    }
}
