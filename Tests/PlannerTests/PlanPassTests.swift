import KernelInterface
import SpecParser
import XCTest

@testable import Planner

/// The optional passes: each applies where it can, says why where it cannot, can be turned off, and
/// changes only what it names; the plan records all of it.
final class PlanPassTests: XCTestCase {
    typealias F = SpecFixtures

    func plan(_ spec: Spec = F.reference, threads: Int = 2, disabled: Set<PlanPass> = []) throws -> Plan {
        let target = Target(isa: .avx512, threads: threads, l2Bytes: 1 << 20, memoryBytes: 24 << 30, cpuName: "test")
        let (plan, diagnostics) = makePlan(spec, target: target, options: PlanOptions(disabledPasses: disabled))
        XCTAssertFalse(diagnostics.hasErrors, "\(diagnostics)")
        let made = try XCTUnwrap(plan)
        XCTAssertEqual(verify(made), [], "disabled: \(disabled)")
        return made
    }

    func report(_ plan: Plan, _ pass: PlanPass) throws -> PassReport { try XCTUnwrap(plan.passes.first { $0.pass == pass }) }

    func forward(_ plan: Plan, _ layer: String) -> [LinearForward] {
        (plan.trainKernels + plan.evalKernels).compactMap { if case .linearForward(let k) = $0, k.layer == layer { return k } else { return nil } }
    }

    func testTheReferencePlanOnTwoThreadsAppliesEveryPassAndReportsEachInOrder() throws {
        let plan = try plan()
        XCTAssertEqual(plan.passes.map(\.pass), PlanPass.allCases)
        // The MLP has no pooling and no batch norm to fold.
        XCTAssertEqual(plan.passes.map(\.applied), [true, true, false, true, true, false])
        XCTAssertEqual(plan.shiftedInput, ShiftedInput(layer: "fc1"))
        XCTAssertEqual(plan.liveFirstFeatures?.layer, "fc1")
        XCTAssertNotNil(plan.batchPrefetch)
        for k in forward(plan, "fc1") {
            XCTAssertEqual(k.inputShift, InputShift(shift: -1, skipsZeroInputs: true))
            XCTAssertTrue(k.storedFeatureOrder)
            XCTAssertEqual(k.passes, ["shifted-input", "sparse-input", "live-first-features"])
        }
        for k in forward(plan, "fc2") {
            XCTAssertNil(k.inputShift)
            XCTAssertFalse(k.storedFeatureOrder)
            XCTAssertEqual(k.passes, [])
        }
        guard case .gatherBatch(let gather)? = plan.trainKernels.first else { return XCTFail("no gather") }
        XCTAssertEqual(gather.shiftFoldedInto, "fc1")
        XCTAssertEqual(gather.shift, 0)
        XCTAssertEqual(gather.normalization.shift, -1)
    }

    func testEachPassCanBeTurnedOffAndSaysSo() throws {
        for pass in PlanPass.allCases {
            let plan = try plan(disabled: [pass])
            let report = try report(plan, pass)
            XCTAssertFalse(report.applied, "\(pass)")
            XCTAssertEqual(report.detail, "turned off (--disable-pass \(pass.rawValue))")
            XCTAssertEqual(plan.options.disabledPasses, [pass])
        }
        XCTAssertNil(try plan(disabled: [.batchPrefetch]).batchPrefetch)
        XCTAssertNil(try plan(disabled: [.liveFirstFeatures]).liveFirstFeatures)
        XCTAssertFalse(forward(try plan(disabled: [.liveFirstFeatures]), "fc1").contains { $0.storedFeatureOrder })
        XCTAssertEqual(forward(try plan(disabled: [.sparseInput]), "fc1").map { $0.inputShift?.skipsZeroInputs }, [false, false])
    }

    func testWithoutTheShiftedInputTheGatherAddsTheShiftAndTheSparseLoopsDoNotApply() throws {
        let plan = try plan(disabled: [.shiftedInput])
        XCTAssertNil(plan.shiftedInput)
        guard case .gatherBatch(let gather)? = plan.trainKernels.first else { return XCTFail("no gather") }
        XCTAssertNil(gather.shiftFoldedInto)
        XCTAssertEqual(gather.shift, -1)
        XCTAssertTrue(forward(plan, "fc1").allSatisfy { $0.inputShift == nil })
        let sparse = try report(plan, .sparseInput)
        XCTAssertFalse(sparse.applied)
        XCTAssertEqual(sparse.detail, "needs shifted-input")
        // The shifted layer's scratch is not reserved.
        let shifted = try self.plan()
        XCTAssertLessThan(try XCTUnwrap(plan.buffer(named: "workspace")).elements, try XCTUnwrap(shifted.buffer(named: "workspace")).elements)
    }

    func testPassesThatCannotApplySayWhy() throws {
        let one = try plan(threads: 1)
        XCTAssertEqual(try report(one, .batchPrefetch).detail, "the plan has one thread")
        // A dropout before the first linear: no linear reads the gathered batch.
        let dropout = try plan(F.spec(layers: [F.flatten(), F.dropout("drop", 0.2), F.linear("fc1", 128, .relu), F.linear("fc2", 10)]))
        XCTAssertEqual(try report(dropout, .shiftedInput).detail, "no linear layer reads the gathered batch directly")
        XCTAssertEqual(try report(dropout, .liveFirstFeatures).detail, "no linear layer reads the gathered batch directly")
        // Tanh in the first layer: its dead units are not ReLU's.
        let tanh = try plan(F.spec(layers: [F.flatten(), F.linear("fc1", 128, .tanh), F.linear("fc2", 10)]))
        let live = try report(tanh, .liveFirstFeatures)
        XCTAssertFalse(live.applied)
        XCTAssertTrue(live.detail.hasPrefix("fc1 does not qualify"), live.detail)
    }

    func testAPlanSurvivesJSONUnchanged() throws {
        for disabled: Set<PlanPass> in [[], [.shiftedInput], Set(PlanPass.allCases)] {
            let plan = try plan(disabled: disabled)
            let data = try JSONEncoder().encode(plan)
            XCTAssertEqual(try JSONDecoder().decode(Plan.self, from: data), plan)
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
            let first = try XCTUnwrap((object["trainKernels"] as? [[String: Any]])?.first)
            XCTAssertEqual(Array(first.keys), ["gatherBatch"], "a kernel is an object keyed by its kind")
        }
        XCTAssertThrowsError(try JSONDecoder().decode(Kernel.self, from: Data(#"{"gatherBatch": {}, "classify": {}}"#.utf8)))
    }

    func testTheTextPlanListsEveryPass() throws {
        let text = PlanText.full(try plan(threads: 1, disabled: [.sparseInput]))
        XCTAssertTrue(text.contains("applied  shifted-input: fc1 adds the shift -1.0"), text)
        XCTAssertTrue(text.contains("skipped  sparse-input: turned off (--disable-pass sparse-input)"), text)
        XCTAssertTrue(text.contains("skipped  batch-prefetch: the plan has one thread"), text)
        XCTAssertTrue(text.contains("fc1.linear+bias+relu [shifted-input, live-first-features]"), text)
        XCTAssertTrue(text.contains("skipped  fold-batch-norm: no evaluation batch_norm follows"), text)
    }
}
