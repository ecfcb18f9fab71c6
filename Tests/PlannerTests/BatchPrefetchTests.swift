import SpecParser
import XCTest

@testable import Planner

final class BatchPrefetchTests: XCTestCase {
    func plan(_ spec: Spec = SpecFixtures.reference, threads: Int = 2, line: UInt = #line) throws -> Plan {
        try SpecFixtures.plan(spec, threads: threads, line: line)
    }

    func testReferenceStepGathersAheadDuringItsOneThreadKernels() throws {
        let plan = try plan()
        let prefetch = try XCTUnwrap(plan.batchPrefetch)
        XCTAssertEqual(prefetch.overlaps, 3..<7)
        XCTAssertEqual(
            plan.trainKernels[prefetch.overlaps].map(\.label),
            ["fc3.linear", "softmax_cross_entropy+grad", "fc3.grad_weight+bias", "fc3.grad_input*relu'"])
        XCTAssertEqual(prefetch.input.buffer, "input.next")
        XCTAssertEqual(prefetch.input.shape, [64, 784])
        XCTAssertEqual(prefetch.labels.buffer, "labels.next")
        XCTAssertEqual(prefetch.labels.shape, [64])
        XCTAssertEqual(plan.buffer(named: "labels.next")?.elementType, .int32)
        XCTAssertTrue(plan.fusions.contains { $0.contains("kernels 3-6") && $0.contains("input.next") }, "\(plan.fusions)")
        XCTAssertEqual(verify(plan), [])
    }

    func testBothBatchPairsLiveThroughTheTrainingStep() throws {
        let plan = try plan()
        let last = plan.trainKernels.count - 1
        for name in ["input", "labels", "input.next", "labels.next"] {
            let buffer = try XCTUnwrap(plan.buffer(named: name))
            XCTAssertEqual(buffer.firstUse, 0, name)
            XCTAssertEqual(buffer.lastUse, last, name)
        }
        // Liveness keeps them apart from every training buffer; evaluation may reuse their bytes.
        let spare = try XCTUnwrap(plan.buffer(named: "input.next"))
        XCTAssertEqual(plan.batchPrefetch?.input.offset, spare.offset)
        for other in plan.buffers where other.name != spare.name && other.firstUse <= last {
            XCTAssertFalse(other.offset < spare.offset + spare.bytes && spare.offset < other.offset + other.bytes, other.name)
        }
    }

    func testOneThreadHasNoPrefetchAndNoSecondPair() throws {
        let plan = try plan(threads: 1)
        XCTAssertNil(plan.batchPrefetch)
        XCTAssertNil(plan.buffer(named: "input.next"))
        XCTAssertNil(plan.trainKernelsOnSecondBatchPair)
        XCTAssertEqual(plan.buffer(named: "input")?.lastUse, plan.trainKernels.firstIndex { $0.label == "fc1.grad_weight+bias" })
    }

    func testTheLongestRunOfOneThreadKernelsIsTheWindow() throws {
        // fc2 (64 -> 8) is small and fc3 (8 -> 4000) large: the one-thread runs are fc2's forward
        // product, the loss, and fc2's two gradient products.
        let spec = SpecFixtures.spec(layers: [
            SpecFixtures.flatten(), SpecFixtures.linear("fc1", 64, .relu), SpecFixtures.linear("fc2", 8, .relu),
            SpecFixtures.linear("fc3", 4000),
        ])
        let plan = try plan(spec)
        let labels = plan.trainKernels.map(\.label)
        let oneThread = plan.trainKernels.indices.filter { plan.threads(of: plan.trainKernels[$0]) == 1 }.map { labels[$0] }
        XCTAssertEqual(
            oneThread, ["fc2.linear+bias+relu", "softmax_cross_entropy+grad", "fc2.grad_weight+bias", "fc2.grad_input*relu'"])
        let prefetch = try XCTUnwrap(plan.batchPrefetch)
        XCTAssertEqual(labels[prefetch.overlaps], ["fc2.grad_weight+bias", "fc2.grad_input*relu'"])
        XCTAssertEqual(verify(plan), [])
    }

    func testSecondPairKernelsDifferOnlyInTheBatchSlices() throws {
        let plan = try plan()
        let second = try XCTUnwrap(plan.trainKernelsOnSecondBatchPair)
        XCTAssertEqual(second.count, plan.trainKernels.count)
        let spareInput = try XCTUnwrap(plan.buffer(named: "input.next")), spareLabels = try XCTUnwrap(plan.buffer(named: "labels.next"))
        for (kernel, moved) in zip(plan.trainKernels, second) {
            XCTAssertEqual(kernel.label, moved.label)
            for (slice, movedSlice) in zip(kernel.reads + kernel.writes, moved.reads + moved.writes) {
                switch slice.buffer {
                case "input":
                    XCTAssertEqual(movedSlice.buffer, "input.next")
                    XCTAssertEqual(movedSlice.offset, spareInput.offset + slice.offset - plan.buffer(named: "input")!.offset)
                case "labels":
                    XCTAssertEqual(movedSlice.buffer, "labels.next")
                    XCTAssertEqual(movedSlice.offset, spareLabels.offset)
                default:
                    XCTAssertEqual(movedSlice, slice)
                }
                XCTAssertEqual(movedSlice.shape, slice.shape)
            }
        }
        // The kernels that read the batch: the gather, fc1's products and the loss.
        let movedKernels = zip(plan.trainKernels, second).filter { $0.0 != $0.1 }.map(\.0.label)
        XCTAssertEqual(movedKernels, ["gather_batch", "fc1.linear+bias+relu", "softmax_cross_entropy+grad", "fc1.grad_weight+bias"])
    }

    func testVerifyRejectsAWindowWithAKernelOnEveryThread() throws {
        var plan = try plan()
        plan.batchPrefetch?.overlaps = 2..<7
        let violations = verify(plan).map(\.description)
        XCTAssertTrue(violations.contains { $0.contains("kernel 2 (fc2.linear+bias+relu) runs on more than one thread") }, "\(violations)")
    }

    func testVerifyRejectsASecondPairThatDoesNotLiveThroughTheStep() throws {
        var plan = try plan()
        let index = try XCTUnwrap(plan.buffers.firstIndex { $0.name == "input.next" })
        plan.buffers[index].lastUse = 5
        XCTAssertTrue(verify(plan).contains { $0.description.contains("input.next does not live through the training step") })
    }

    func testVerifyRejectsASecondPairShapedUnlikeTheBatch() throws {
        var plan = try plan()
        plan.batchPrefetch?.labels.shape = [32]
        XCTAssertTrue(verify(plan).contains { $0.description.contains("labels.next is not shaped like labels") })
    }

    func testJSONCarriesThePrefetch() throws {
        let plan = try plan()
        let decoded = try JSONDecoder().decode(Plan.self, from: Data(PlanText.json(plan).utf8))
        XCTAssertEqual(decoded.batchPrefetch, plan.batchPrefetch)
        XCTAssertTrue(PlanText.full(plan).contains("input.next"))
    }
}
