import KernelInterface
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

/// The kernels' side of `StoredFeatureOrder`: a layer whose features are stored in another order (within
/// each part's share) gives the model order's bits: the forward product's output comes out in the
/// model's order, the weight gradient stores zeros for zero columns of dy without multiplying; and
/// Adam's short path for idle vectors is the full formula's result.
final class FeatureOrderKernelTests: XCTestCase {
    func testForwardInAStoredOrderGivesTheModelOrdersBits() {
        var random = TestRandom(seed: 71)
        for set in runnableKernelSets() {
            // Column splits (n > m) and row splits (m >= n), a ragged last panel, a ragged last row block.
            for (m, n, k) in [(64, 128, 50), (10, 80, 33), (64, 40, 20), (3, 64, 9), (200, 96, 12)] {
                let x = random.floats(m * k), weight = random.floats(n * k), bias = random.floats(n)
                for parts in [1, 2] where parts == 1 || splitsByOutputFeature(outFeatures: n, parts: parts) {
                    let order = makeOrder(n: n, parts: parts, dead: [], kind: .random, random: &random)
                    let label = "\(set.isa) m=\(m) n=\(n) k=\(k) parts=\(parts)"
                    let expected = forward(set, x, weightPanels(weight, out: n, in: k), bias, m, n, k, parts: parts, order: nil)
                    let got = forward(
                        set, x, weightPanels(stored(weight, order, k: k), out: n, in: k), stored(bias, order, k: 1), m, n, k,
                        parts: parts, order: order)
                    XCTAssertEqual(bitPatterns(got.y), bitPatterns(expected.y), label)
                    XCTAssertEqual(bitPatterns(got.preact), bitPatterns(expected.preact), label)
                }
            }
        }
    }

    func testWeightGradientInAStoredOrderSkipsZeroColumnsWithTheSameBits() {
        var random = TestRandom(seed: 72)
        for set in runnableKernelSets() {
            // m = 300: more than one k pass, so no skipping and the bias summed column by column.
            for (m, n, k) in [(64, 128, 100), (16, 64, 37), (5, 48, 20), (64, 128, 7), (300, 64, 30)] {
                let x = random.floats(m * k)
                // About 45 % of the features dead: their columns of dy are +0 or -0.
                let dead = Set((0..<n).filter { _ in random.int(below: 100) < 45 })
                var dy = random.floats(m * n)
                for r in 0..<m {
                    for f in dead { dy[r * n + f] = random.int(below: 2) == 0 ? 0 : -0.0 }
                }
                // One live feature with a single nonzero element.
                if let lone = (0..<n).first(where: { !dead.contains($0) }) {
                    for r in 0..<m { dy[r * n + lone] = r == m / 2 ? 0.25 : 0 }
                }
                let expected = backwardWeights(set, x, dy, m, n, k, parts: 1, order: nil)
                for parts in [1, 2] where parts == 1 || splitsByOutputFeature(outFeatures: n, parts: parts) {
                    for kind in FeatureOrderKind.allCases {
                        let order = makeOrder(n: n, parts: parts, dead: dead, kind: kind, random: &random)
                        let label = "\(set.isa) m=\(m) n=\(n) k=\(k) parts=\(parts) \(kind)"
                        let got = backwardWeights(set, x, dy, m, n, k, parts: parts, order: order)
                        XCTAssertEqual(bitPatterns(got.dw), bitPatterns(stored(expected.dw, order, k: k)), label)
                        XCTAssertEqual(bitPatterns(got.db), bitPatterns(stored(expected.db, order, k: 1)), label)
                        let live = order.map { f in (0..<m).contains { dy[$0 * n + Int(f)] != 0 } ? Float(1) : 0 }
                        XCTAssertEqual(got.live, live, "live flags by stored position: \(label)")
                    }
                }
            }
        }
    }

    func testAdamShortPathForIdleVectorsGivesTheFullFormulasBits() {
        var random = TestRandom(seed: 73)
        let zeros: [Float] = [0, -0.0]
        for set in runnableKernelSets() {
            for (beta1, eps, weightDecay, decoupled) in [
                (0.9, 1e-8, 0.0, false), (0.3, 1e-8, 0.0, false), (0.9, 0.0, 0.0, false), (0.9, 1e-8, 0.01, false),
                (0.9, 1e-8, 0.01, true), (0.3, 1e-3, 0.0, true),
            ] {
                for step in [1, 7] {
                    // Vectors: idle (g and m zeros of both signs), idle with v = 0, live, m not yet zero,
                    // idle with a negative or NaN v (full path), one lane live.
                    var g = (0..<16).map { _ in zeros[random.int(below: 2)] } + (0..<16).map { _ in zeros[random.int(below: 2)] }
                    g += random.floats(16) + [Float](repeating: 0, count: 16) + [Float](repeating: 0, count: 32)
                    g += (0..<16).map { $0 == 5 ? 1e-3 : 0 }
                    var m = (0..<32).map { _ in zeros[random.int(below: 2)] } + random.floats(16) + random.floats(16, -1e-30, 1e-30)
                    m += [Float](repeating: 0, count: 48)
                    var v = random.floats(16, 0, 1) + [Float](repeating: 0, count: 16) + random.floats(32, 0, 1)
                    v += [-1] + random.floats(15, 0, 1) + [.nan] + random.floats(15, 0, 1) + random.floats(16, 0, 1)
                    var p = random.floats(g.count)
                    p[3] = -0.0
                    p[20] = 0
                    let label = "\(set.isa) beta1 \(beta1) eps \(eps) decay \(weightDecay) \(decoupled) step \(step)"
                    var (p1, m1, v1) = (p, m, v)
                    set.adamStep(&p1, g, &m1, &v1, g.count, 1e-3, beta1, 0.999, eps, weightDecay, decoupled, step, 0, 1)
                    for i in g.indices {
                        // One element at a time: the scalar path, which has no short cut.
                        set.adamStep(&p[i], [g[i]], &m[i], &v[i], 1, 1e-3, beta1, 0.999, eps, weightDecay, decoupled, step, 0, 1)
                    }
                    XCTAssertEqual(bitPatterns(p1), bitPatterns(p), label)
                    XCTAssertEqual(bitPatterns(m1), bitPatterns(m), label)
                    XCTAssertEqual(bitPatterns(v1), bitPatterns(v), label)
                }
            }
        }
    }

    // MARK: - Running the kernels

    func forward(
        _ set: KernelSet, _ x: [Float], _ panels: [Float], _ bias: [Float], _ m: Int, _ n: Int, _ k: Int, parts: Int, order: [Int32]?
    ) -> (y: [Float], preact: [Float]) {
        let tile = MatmulTile.choose(m: m, n: n, k: k, isa: set.isa)
        var y = [Float](repeating: .nan, count: m * n), preact = y
        _ = runParts(parts, perPart: workspaceFloats(tile, m, n, k), order: order, n: n) { part, workspace, order in
            set.linearForward(x, panels, bias, &y, &preact, m, n, k, .relu, 0, tile, workspace, part, parts, order)
        }
        return (y, preact)
    }

    func backwardWeights(
        _ set: KernelSet, _ x: [Float], _ dy: [Float], _ m: Int, _ n: Int, _ k: Int, parts: Int, order: [Int32]?
    ) -> (dw: [Float], db: [Float], live: [Float]) {
        let tile = MatmulTile.choose(m: k, n: n, k: m, isa: set.isa)
        var dw = [Float](repeating: .nan, count: WeightPanels.storedFloats(outFeatures: n, inFeatures: k))
        var db = [Float](repeating: .nan, count: n)
        let live = runParts(parts, perPart: workspaceFloats(tile, k, n, m), order: order, n: n) { part, workspace, order in
            set.linearBackwardWeights(x, dy, &dw, &db, m, n, k, tile, workspace, part, parts, order)
        }
        return (weightFromPanels(dw, out: n, in: k), db, live)
    }
}
