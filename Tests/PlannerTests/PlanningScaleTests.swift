import Foundation
import SpecParser
import XCTest

@testable import Planner

/// Planning grows near-linearly with the number of layers: deep specs plan within seconds (debug
/// builds included, where every plan is also verified), and the plans stay valid.
final class PlanningScaleTests: XCTestCase {
    func seconds<T>(_ body: () throws -> T) rethrows -> (T, Double) {
        let start = DispatchTime.now().uptimeNanoseconds
        let value = try body()
        return (value, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }

    func testTwoThousandLinearLayersPlanWithinSeconds() throws {
        var layers = [SpecFixtures.flatten()]
        for index in 1...2_000 { layers.append(SpecFixtures.linear("fc\(index)", 16, .relu, line: 10 + index)) }
        layers.append(SpecFixtures.linear("out", 10, line: 2_020))
        let spec = SpecFixtures.spec(layers: layers, batch: 8)
        let (plan, elapsed) = try seconds { try SpecFixtures.plan(spec) }
        XCTAssertEqual(plan.parameters.count, 2 * 2_001)
        XCTAssertEqual(verify(plan), [])
        XCTAssertLessThan(elapsed, 5, "planning 2,000 linear layers took \(elapsed) s")
    }

    /// 4,000 activation layers after one linear: each keeps its output for the backward pass, so
    /// thousands of buffers are live at once.
    func testFourThousandActivationLayersPlanWithinSeconds() throws {
        var layers = [SpecFixtures.flatten(), SpecFixtures.linear("fc1", 16, line: 10)]
        for index in 1...4_000 { layers.append(SpecFixtures.activation("relu\(index)", .relu, line: 10 + index)) }
        layers.append(SpecFixtures.linear("out", 10, line: 6_020))
        let spec = SpecFixtures.spec(layers: layers, batch: 8, evalBatch: 8)
        let (plan, elapsed) = try seconds { try SpecFixtures.plan(spec) }
        XCTAssertEqual(verify(plan), [])
        XCTAssertLessThan(elapsed, 5, "planning 4,000 relu layers took \(elapsed) s")
        let (text, printing) = seconds { PlanText.full(plan) }
        XCTAssertTrue(text.contains("relu4000"))
        XCTAssertLessThan(printing, 5, "printing the plan of 4,000 relu layers took \(printing) s")
    }

    /// The overlap check still names every clashing pair, in declaration order.
    func testVerifyNamesEveryOverlappingPairInOrder() throws {
        var plan = try XCTUnwrap(makePlan(SpecFixtures.reference, target: .reference).plan)
        let names = ["fc1.out", "fc2.out", "fc3.out"]
        let indices = try names.map { name in try XCTUnwrap(plan.buffers.firstIndex { $0.name == name }) }
        for index in indices {
            plan.buffers[index].offset = plan.buffers[indices[0]].offset
            plan.buffers[index].firstUse = 0
            plan.buffers[index].lastUse = 1
        }
        let overlaps = verify(plan).map(\.description).filter { $0.contains("overlap") }
        XCTAssertEqual(overlaps.count, 3, "\(overlaps)")
        XCTAssertTrue(overlaps[0].hasPrefix("buffers fc1.out [0, 1] and fc2.out"), "\(overlaps)")
        XCTAssertTrue(overlaps[2].hasPrefix("buffers fc2.out [0, 1] and fc3.out"), "\(overlaps)")
    }
}
