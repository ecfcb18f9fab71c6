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

    func testPlanForRanksShowsTheSplitTheAllreduceAndAStepEstimate() throws {
        let result = try MLPCProcess.run(
            ["plan", "specs/mnist_mlp.yaml", "--threads", "1", "--ranks", "2", "--bandwidth", "25", "--latency", "5", "--gflops", "40"])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 0, result.stderr)
        for text in [
            "training step, batch 32", "data parallel over 2 ranks (mpirun -np 2)", "64 rows per step over all ranks, at most 32 on each",
            "per step: 1 allreduce (sum) of 110,816 floats, 443,264 bytes", "step estimate at 25 Gbit/s, 5 us per message, 40 GFLOP/s per rank",
            "allreduce (ring): 443,264 bytes in and out of each rank in 2 messages, 151.8 us",
            "applied  live-first-features",
        ] {
            XCTAssertTrue(result.stdout.contains(text), "no '\(text)' in: \(result.stdout.suffix(3000))")
        }
        let json = try MLPCProcess.run(["plan", "specs/mnist_mlp.yaml", "--threads", "1", "--ranks", "3", "--format", "json"])
        let plan = try XCTUnwrap(try jsonValue(json.stdout) as? [String: Any])
        XCTAssertEqual(plan["batchSize"] as? Int, 22)
        let parallel = try XCTUnwrap(plan["dataParallel"] as? [String: Any])
        XCTAssertEqual(parallel["ranks"] as? Int, 3)
        XCTAssertEqual(parallel["globalBatchSize"] as? Int, 64)
        let bad = try MLPCProcess.run(["plan", "specs/mnist_mlp.yaml", "--ranks", "0"])
        XCTAssertEqual(bad.status, 2, bad.stderr)
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
        XCTAssertNil(plan["dataParallel"], "one process plans no data parallelism")
        XCTAssertEqual((plan["options"] as? [String: Any])?.keys.sorted(), ["disabledPasses"])
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
