import SpecParser
import XCTest

@testable import Planner

/// Which layer the plan lets the runtime store live-first (`LiveFirstFeatures`), on how many parts.
final class LiveFirstFeaturesTests: XCTestCase {
    func plan(_ spec: Spec = SpecFixtures.reference, threads: Int = 2, line: UInt = #line) throws -> Plan {
        try SpecFixtures.plan(spec, threads: threads, line: line)
    }

    func testTheReferencesFirstLayerIsStoredLiveFirstInEachThreadsShare() throws {
        let plan = try plan()
        XCTAssertEqual(plan.liveFirstFeatures, LiveFirstFeatures(layer: "fc1", parts: 2))
        XCTAssertTrue(
            plan.fusions.contains { $0.hasPrefix("fc1's features are stored live-first") && $0.contains("2 threads' shares") },
            "\(plan.fusions)")
        XCTAssertTrue(plan.fusions.contains { $0.contains("adam the square roots and divisions of idle vectors") })
        XCTAssertEqual(try self.plan(threads: 1).liveFirstFeatures, LiveFirstFeatures(layer: "fc1", parts: 1))
        let sgd = try self.plan(SpecFixtures.spec(layers: SpecFixtures.reference.model.layers, optimizer: .sgd))
        XCTAssertEqual(sgd.liveFirstFeatures?.layer, "fc1")
        XCTAssertFalse(sgd.fusions.contains { $0.contains("square roots") }, "\(sgd.fusions)")
        // The executor may have fewer threads than the plan: then fewer parts.
        XCTAssertEqual(liveFirstFeatureParts(plan, layer: "fc1", threads: 1), 1)
        XCTAssertTrue(PlanText.json(plan).contains("\"liveFirstFeatures\""))
    }

    func testOnlyAFirstReLULayerQualifies() throws {
        typealias F = SpecFixtures
        let tanh = F.spec(layers: [F.flatten(), F.linear("fc1", 128, .tanh), F.linear("fc2", 10)])
        XCTAssertNil(try plan(tanh).liveFirstFeatures)
        let linearFirst = F.spec(layers: [F.flatten(), F.linear("fc1", 128), F.linear("fc2", 64, .relu), F.linear("fc3", 10)])
        XCTAssertNil(try plan(linearFirst).liveFirstFeatures)
        XCTAssertFalse(try plan(linearFirst).fusions.contains { $0.contains("live-first") })
        // A later ReLU layer has an input gradient summing over its features: never that one.
        XCTAssertNil(liveFirstFeatureParts(try plan(), layer: "fc2", threads: 2))
        // Ten features cannot give two threads a whole weight panel each.
        let narrow = F.spec(layers: [F.flatten(), F.linear("fc1", 10, .relu), F.linear("fc2", 10)], batch: 512)
        let narrowPlan = try plan(narrow)
        XCTAssertTrue(narrowPlan.trainKernels.contains { $0.label == "fc1.linear+bias+relu" && narrowPlan.threads(of: $0) == 2 })
        XCTAssertNil(narrowPlan.liveFirstFeatures)
    }
}
