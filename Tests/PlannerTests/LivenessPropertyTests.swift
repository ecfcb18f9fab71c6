import KernelInterface
import SpecParser
import TestSupport
import XCTest

@testable import Planner

/// Random valid specs: whatever the layers, no two buffers live at the same time may overlap, every slice
/// stays inside its buffer and the arena, and nothing is read before it is written.
final class LivenessPropertyTests: XCTestCase {
    func randomSpec(_ rng: inout SplitMix64) -> Spec {
        let activations: [Activation] = [.relu, .leakyRelu(negativeSlope: 0.1), .sigmoid, .tanh, .gelu(tanhApproximation: false)]
        var layers: [LayerSpec] = [SpecFixtures.flatten()]
        let hidden = Int.random(in: 0...4, using: &rng)
        var line = 10
        func next() -> Int { line += 1; return line }
        if Bool.random(using: &rng) { layers.append(SpecFixtures.dropout("dropout0", 0.2, line: next())) }
        for i in 0..<hidden {
            let width = Int.random(in: 1...300, using: &rng)
            let act = activations.randomElement(using: &rng)!
            switch Int.random(in: 0..<3, using: &rng) {
            case 0: layers.append(SpecFixtures.linear("fc\(i + 1)", width, act, line: next()))
            case 1:
                layers.append(SpecFixtures.linear("fc\(i + 1)", width, line: next()))
                layers.append(SpecFixtures.activation("act\(i + 1)", act, line: next()))
            default:
                layers.append(SpecFixtures.linear("fc\(i + 1)", width, act, bias: false, line: next()))
                layers.append(SpecFixtures.dropout("dropout\(i + 1)", 0.3, line: next()))
                if Bool.random(using: &rng) { layers.append(SpecFixtures.activation("act\(i + 1)", act, line: next())) }
            }
        }
        layers.append(SpecFixtures.linear("out", Int.random(in: 2...20, using: &rng), line: next()))
        let optimizers: [OptimizerKind] = [.sgd, .adam, .adamw]
        return SpecFixtures.spec(
            input: [Int.random(in: 1...3, using: &rng), Int.random(in: 1...20, using: &rng)], layers: layers,
            loss: Bool.random(using: &rng) ? .crossEntropy : .mse, optimizer: optimizers.randomElement(using: &rng)!,
            momentum: Bool.random(using: &rng) ? 0.9 : 0, batch: Int.random(in: 1...200, using: &rng),
            evalBatch: Int.random(in: 1...500, using: &rng))
    }

    func testNoLiveBuffersOverlapInRandomValidSpecs() throws {
        var rng = SplitMix64(state: 2026)
        for trial in 0..<300 {
            let spec = randomSpec(&rng)
            var target = Target.reference
            target.threads = Int.random(in: 1...4, using: &rng)
            let (plan, diagnostics) = makePlan(spec, target: target)
            XCTAssertFalse(diagnostics.hasErrors, "trial \(trial): \(diagnostics)")
            let p = try XCTUnwrap(plan, "trial \(trial)")
            XCTAssertEqual(verify(p), [], "trial \(trial)")
            // Liveness sharing never makes the arena larger than the buffers laid end to end.
            let unshared = p.buffers.reduce(0) { $0 + roundUp($1.bytes, to: 64) }
            XCTAssertLessThanOrEqual(p.arenaBytes, unshared, "trial \(trial)")
        }
    }

    func testVerifyCatchesOverlappingLiveBuffers() throws {
        var plan = try XCTUnwrap(makePlan(SpecFixtures.reference, target: .reference).plan)
        let i = try XCTUnwrap(plan.buffers.firstIndex { $0.name == "fc1.out" })
        let j = try XCTUnwrap(plan.buffers.firstIndex { $0.name == "fc2.out" })
        plan.buffers[j].offset = plan.buffers[i].offset
        XCTAssertTrue(verify(plan).contains { $0.description.contains("overlap") })
    }
}
