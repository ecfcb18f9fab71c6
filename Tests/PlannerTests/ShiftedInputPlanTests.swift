import KernelInterface
import SpecParser
import XCTest

@testable import Planner

/// Which layer absorbs the input normalization's shift (`ShiftedInput`), and the scratch its kernels get.
final class ShiftedInputPlanTests: XCTestCase {
    typealias F = SpecFixtures

    func testTheReferencesFirstLayerAbsorbsTheShift() throws {
        let plan = try F.plan()
        XCTAssertEqual(plan.shiftedInput, ShiftedInput(layer: "fc1"))
        XCTAssertTrue(
            plan.fusions.contains { $0.hasPrefix("the input normalization's shift is folded into fc1") }, "\(plan.fusions)")
        XCTAssertTrue(PlanText.json(plan).contains("\"shiftedInput\""))
        // Without a flatten, and on one thread, too.
        let unflattened = F.spec(input: [784], layers: [F.linear("fc1", 32, .relu), F.linear("fc2", 10)])
        XCTAssertEqual(try F.plan(unflattened, threads: 1).shiftedInput?.layer, "fc1")
    }

    func testALayerAfterADropoutOrAnActivationDoesNot() throws {
        let dropout = F.spec(layers: [F.flatten(), F.dropout("drop", 0.2), F.linear("fc1", 128, .relu), F.linear("fc2", 10)])
        XCTAssertNil(try F.plan(dropout).shiftedInput)
        XCTAssertFalse(try F.plan(dropout).fusions.contains { $0.contains("shift") })
        let activation = F.spec(layers: [F.flatten(), F.activation("act", .tanh), F.linear("fc1", 128, .relu), F.linear("fc2", 10)])
        XCTAssertNil(try F.plan(activation).shiftedInput)
    }

    /// Every part of the workspace has room for the shifted layer's scratch beyond its products' packing,
    /// in training (batch 64) and in evaluation (its own batch).
    func testTheWorkspaceHoldsTheShiftedKernelsScratch() throws {
        let plan = try F.plan()
        let workspace = try XCTUnwrap(plan.buffer(named: "workspace"))
        let perThread = workspace.shape[1]
        var checked = 0
        for kernel in plan.trainKernels + plan.evalKernels {
            switch kernel {
            case .linearForward(let k) where k.layer == "fc1":
                let mm = k.product
                XCTAssertGreaterThanOrEqual(
                    perThread, MatmulTile.workspaceFloats(mm.tile, m: mm.m, n: mm.n, k: mm.k) + shiftedForwardScratchFloats(m: mm.m, n: mm.n, k: mm.k))
                checked += 1
            case .linearBackwardWeights(let k) where k.layer == "fc1":
                let mm = k.product
                XCTAssertGreaterThanOrEqual(
                    perThread,
                    MatmulTile.workspaceFloats(mm.tile, m: mm.m, n: mm.n, k: mm.k) + shiftedWeightGradientScratchFloats(m: mm.k, n: mm.n, k: mm.m))
                checked += 1
            default:
                break
            }
        }
        XCTAssertEqual(checked, 3, "training's forward and weight gradient, evaluation's forward")
        // A plan without the shifted layer does not reserve it.
        let dropout = try F.plan(F.spec(layers: [F.flatten(), F.dropout("drop", 0.2), F.linear("fc1", 128, .relu), F.linear("fc2", 10)]))
        XCTAssertLessThan(try XCTUnwrap(dropout.buffer(named: "workspace")).shape[1], perThread)
    }
}
