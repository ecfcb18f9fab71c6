import KernelInterface
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

/// The kernels of the layer that absorbs its input's shift (the plan's `shiftedInput`): the loops over
/// nonzero pixels give the blocked product's bits for any split, feature order and share of zeros, and
/// both compute x wᵀ + b and xᵀ dy, with x = u + shift, to Float accuracy.
final class ShiftedInputKernelTests: XCTestCase {
    /// u for m rows of k pixels: a share `zeros` (0...1) of exact zeros, the rest in (0, 2] as
    /// pixel * scale is, and a few negative values (any finite u must work).
    func makeU(_ m: Int, _ k: Int, zeros: Double, random: inout TestRandom) -> [Float] {
        (0..<(m * k)).map { _ in
            if Double(random.int(below: 10_000)) < zeros * 10_000 { return random.int(below: 2) == 0 ? 0 : -0.0 }
            return random.int(below: 20) == 0 ? -random.float(0.01, 1) : random.float(0.01, 2)
        }
    }

    let shapes = [(64, 128, 784), (64, 128, 100), (10, 80, 33), (3, 64, 9), (200, 96, 12), (64, 10, 70), (130, 40, 64), (1, 40, 784)]

    func testForwardOverNonzeroPixelsGivesTheBlockedProductsBitsForEverySplitAndOrder() {
        var random = TestRandom(seed: 91)
        for set in runnableKernelSets() {
            for (m, n, k) in shapes {
                for zeros in [0.8, 0.3, 1.0] {
                    let u = makeU(m, k, zeros: zeros, random: &random)
                    let weight = random.floats(n * k, -0.2, 0.2), bias = random.floats(n)
                    let shift = Float(-1)
                    let label = "\(set.isa) m=\(m) n=\(n) k=\(k) zeros \(zeros)"
                    let blocked = forward(set, u, weightPanels(weight, out: n, in: k), bias, m, n, k, parts: 1, order: nil, shift: shift, skip: false)
                    // Against the definition, x = u + shift.
                    var expected = [Double](repeating: 0, count: m * n), scale = expected
                    for r in 0..<m {
                        for f in 0..<n {
                            var sum = Double(bias[f]), magnitude = abs(Double(bias[f]))
                            for i in 0..<k {
                                let term = (Double(u[r * k + i]) + Double(shift)) * Double(weight[f * k + i])
                                sum += term
                                magnitude += abs(term)
                            }
                            expected[r * n + f] = sum
                            scale[r * n + f] = magnitude
                        }
                    }
                    assertClose(blocked.preact, expected, scale: scale, relative: 1e-5, absolute: 1e-6, label)
                    for parts in [1, 2, 3] where parts == 1 || splitsByOutputFeature(outFeatures: n, parts: parts) || n <= m {
                        for ordered in [false, true] {
                            if ordered && !splitsByOutputFeature(outFeatures: n, parts: parts) && parts > 1 { continue }
                            let order = ordered ? makeOrder(n: n, parts: parts, dead: [], kind: .random, random: &random) : nil
                            let storedWeight = order.map { stored(weight, $0, k: k) } ?? weight
                            let storedBias = order.map { stored(bias, $0, k: 1) } ?? bias
                            for skip in [true, false] {
                                let got = forward(
                                    set, u, weightPanels(storedWeight, out: n, in: k), storedBias, m, n, k, parts: parts, order: order,
                                    shift: shift, skip: skip)
                                let what = "\(label) parts \(parts) ordered \(ordered) skip \(skip)"
                                XCTAssertEqual(bitPatterns(got.y), bitPatterns(blocked.y), what)
                                XCTAssertEqual(bitPatterns(got.preact), bitPatterns(blocked.preact), what)
                            }
                        }
                    }
                }
            }
        }
    }

    func testWeightGradientOverNonzeroPixelsGivesTheBlockedProductsBits() {
        var random = TestRandom(seed: 92)
        // (m, n, k) = (batch, features, inputs); m = 100 and 130 need two masks per input.
        for set in runnableKernelSets() {
            for (m, n, k) in [(64, 128, 784), (16, 64, 37), (5, 48, 20), (100, 64, 30), (64, 10, 50), (130, 40, 70), (64, 128, 7)] {
                for zeros in [0.8, 0.3, 1.0] {
                    let u = makeU(m, k, zeros: zeros, random: &random)
                    let shift = Float(-0.4242)
                    // About 40 % of the features dead (their dy +0 or -0), and one with a single nonzero.
                    let dead = Set((0..<n).filter { _ in random.int(below: 100) < 40 })
                    var dy = random.floats(m * n)
                    for r in 0..<m {
                        for f in dead { dy[r * n + f] = random.int(below: 2) == 0 ? 0 : -0.0 }
                    }
                    if let lone = (0..<n).first(where: { !dead.contains($0) }) {
                        for r in 0..<m { dy[r * n + lone] = r == m / 2 ? 0.25 : 0 }
                    }
                    let label = "\(set.isa) m=\(m) n=\(n) k=\(k) zeros \(zeros)"
                    let blocked = backwardWeights(set, u, dy, m, n, k, parts: 1, order: nil, shift: shift, skip: false)
                    var expected = [Double](repeating: 0, count: n * k), scale = expected
                    for f in 0..<n {
                        for i in 0..<k {
                            for b in 0..<m {
                                let term = (Double(u[b * k + i]) + Double(shift)) * Double(dy[b * n + f])
                                expected[f * k + i] += term
                                scale[f * k + i] += abs(term)
                            }
                        }
                    }
                    assertClose(blocked.dw, expected, scale: scale, relative: 1e-5, absolute: 1e-7, label)
                    let sums = (0..<n).map { f in (0..<m).reduce(Float(0)) { $0 + dy[$1 * n + f] } }
                    XCTAssertEqual(bitPatterns(blocked.db), bitPatterns(sums), label)
                    for parts in [1, 2] {
                        for ordered in [false, true] {
                            if ordered && parts > 1 && !splitsByOutputFeature(outFeatures: n, parts: parts) { continue }
                            let order = ordered ? makeOrder(n: n, parts: parts, dead: dead, kind: .liveFirst, random: &random) : nil
                            for skip in [true, false] {
                                let got = backwardWeights(set, u, dy, m, n, k, parts: parts, order: order, shift: shift, skip: skip)
                                let what = "\(label) parts \(parts) ordered \(ordered) skip \(skip)"
                                XCTAssertEqual(
                                    bitPatterns(got.dw), bitPatterns(order.map { stored(blocked.dw, $0, k: k) } ?? blocked.dw), what)
                                XCTAssertEqual(
                                    bitPatterns(got.db), bitPatterns(order.map { stored(blocked.db, $0, k: 1) } ?? blocked.db), what)
                                if let order {
                                    let live = order.map { f in (0..<m).contains { dy[$0 * n + Int(f)] != 0 } ? Float(1) : 0 }
                                    XCTAssertEqual(got.live, live, "live flags: \(what)")
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// A weight or an output gradient that is not finite (0 * inf is NaN, not +0) sends the call to the
    /// blocked product, so the bits stay those of the blocked product there too.
    func testNonFiniteWeightsAndGradientsGiveTheBlockedProductsBits() {
        var random = TestRandom(seed: 93)
        let (m, n, k) = (8, 64, 64)
        var u = makeU(m, k, zeros: 0.9, random: &random)
        for r in 0..<m { u[r * k + 5] = 0 }
        for bad in [Float.infinity, -.infinity, .nan] {
            var weight = random.floats(n * k, -0.2, 0.2)
            weight[3 * k + 5] = bad
            var dy = random.floats(m * n)
            dy[2 * n + 40] = bad
            let bias = random.floats(n)
            for set in runnableKernelSets() {
                let blocked = forward(set, u, weightPanels(weight, out: n, in: k), bias, m, n, k, parts: 2, order: nil, shift: -1, skip: false)
                let skipped = forward(set, u, weightPanels(weight, out: n, in: k), bias, m, n, k, parts: 2, order: nil, shift: -1, skip: true)
                XCTAssertEqual(bitPatterns(skipped.preact), bitPatterns(blocked.preact), "\(set.isa) weight \(bad)")
                XCTAssertTrue(blocked.preact[3].isNaN, "0 * \(bad) in the chain")
                let blockedGradient = backwardWeights(set, u, dy, m, n, k, parts: 2, order: nil, shift: -1, skip: false)
                let skippedGradient = backwardWeights(set, u, dy, m, n, k, parts: 2, order: nil, shift: -1, skip: true)
                XCTAssertEqual(bitPatterns(skippedGradient.dw), bitPatterns(blockedGradient.dw), "\(set.isa) dy \(bad)")
            }
        }
    }

    // MARK: - Running the kernels

    func forward(
        _ set: KernelSet, _ u: [Float], _ panels: [Float], _ bias: [Float], _ m: Int, _ n: Int, _ k: Int, parts: Int,
        order: [Int32]?, shift: Float, skip: Bool
    ) -> (y: [Float], preact: [Float]) {
        let tile = MatmulTile.choose(m: m, n: n, k: k, isa: set.isa)
        var y = [Float](repeating: .nan, count: m * n), preact = y
        let perPart = workspaceFloats(tile, m, n, k) + shiftedForwardScratchFloats(m: m, n: n, k: k)
        _ = runParts(parts, perPart: perPart, order: order, n: n) { part, workspace, order in
            set.linearForwardShifted(u, panels, bias, &y, &preact, m, n, k, .relu, 0, tile, workspace, part, parts, order, shift, skip)
        }
        return (y, preact)
    }

    func backwardWeights(
        _ set: KernelSet, _ u: [Float], _ dy: [Float], _ m: Int, _ n: Int, _ k: Int, parts: Int, order: [Int32]?, shift: Float,
        skip: Bool
    ) -> (dw: [Float], db: [Float], live: [Float]) {
        let tile = MatmulTile.choose(m: k, n: n, k: m, isa: set.isa)
        var dw = [Float](repeating: .nan, count: WeightPanels.storedFloats(outFeatures: n, inFeatures: k))
        var db = [Float](repeating: .nan, count: n)
        let perPart = workspaceFloats(tile, k, n, m) + shiftedWeightGradientScratchFloats(m: m, n: n, k: k)
        let live = runParts(parts, perPart: perPart, order: order, n: n) { part, workspace, order in
            set.linearBackwardWeightsShifted(u, dy, &dw, &db, m, n, k, tile, workspace, part, parts, order, shift, skip)
        }
        return (weightFromPanels(dw, out: n, in: k), db, live)
    }
}
