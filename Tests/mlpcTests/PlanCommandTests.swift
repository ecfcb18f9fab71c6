import Foundation
import XCTest

/// `mlpc plan` in its three renderings.
final class PlanCommandTests: XCTestCase {
    func testTextPlanListsTrainingAndEvaluationKernelsAndBuffers() throws {
        let result = try MLPCProcess.run(["plan", "specs/mnist_mlp.yaml", "--threads", "2"])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 0, result.stderr)
        for text in ["plan for mnist_mlp", "2 threads", "training step, batch 64", "evaluation step", "fc1.linear", "adam_step", "buffers"] {
            XCTAssertTrue(result.stdout.contains(text), "no '\(text)' in: \(result.stdout.prefix(3000))")
        }
    }

    func testJSONPlanDecodesWithKernelsBuffersAndArenaSize() throws {
        let result = try MLPCProcess.run(["plan", "specs/mnist_mlp.yaml", "--format", "json", "--threads", "1"])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 0, result.stderr)
        let plan = try XCTUnwrap(try jsonValue(result.stdout) as? [String: Any])
        XCTAssertEqual(plan["specName"] as? String, "mnist_mlp")
        XCTAssertEqual(plan["batchSize"] as? Int, 64)
        XCTAssertEqual(plan["classes"] as? Int, 10)
        XCTAssertEqual(plan["inputShape"] as? [Int], [1, 28, 28])
        XCTAssertGreaterThan(plan["arenaBytes"] as? Int ?? 0, 0)
        XCTAssertFalse((plan["trainKernels"] as? [Any] ?? []).isEmpty)
        XCTAssertFalse((plan["evalKernels"] as? [Any] ?? []).isEmpty)
        XCTAssertFalse((plan["buffers"] as? [Any] ?? []).isEmpty)
        let target = try XCTUnwrap(plan["target"] as? [String: Any])
        XCTAssertEqual(target["threads"] as? Int, 1)
    }

    func testDotPlanIsADigraph() throws {
        let result = try MLPCProcess.run(["plan", "specs/mnist_mlp.yaml", "--format", "dot"])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 0, result.stderr)
        let dot = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(dot.hasPrefix("digraph \"mnist_mlp\" {"), dot)
        XCTAssertTrue(dot.hasSuffix("}"), dot)
        XCTAssertEqual(dot.filter { $0 == "{" }.count, dot.filter { $0 == "}" }.count)
        XCTAssertTrue(dot.contains("->"), dot)
    }

    func testPlanOfAnInvalidSpecExitsOneWithDiagnostics() throws {
        let path = try makeTemporaryDirectory(self) + "/spec.yaml"
        try writeFile(path, TinyDataset.spec().replacingOccurrences(of: "{out: 3}", with: "{out: 0}"))
        let result = try MLPCProcess.run(["plan", path, "--format", "json"])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 1)
        let diagnostics = try XCTUnwrap(try jsonValue(result.stdout) as? [[String: Any]], result.stdout)
        XCTAssertTrue(diagnostics.contains { $0["code"] as? String == "E0123" }, result.stdout)
    }
}
