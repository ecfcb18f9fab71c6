import Foundation
import KernelInterface
import Runtime
import Figures
import Files
import DataSources
import Execution
import XCTest

/// The three matrix-product kernels of a linear layer against slow references, for every kernel set the
/// CPU runs, on ragged shapes, small cache blocks (several k passes and row/column blocks), and splits.
/// Weights are written here in PyTorch's layout, [out, in] = [n, k] row-major; the runners put them into
/// the kernels' panels and take the weight gradient back out.
final class MatmulKernelTests: XCTestCase {
    /// (m, n, k) with 1, odd sizes, sizes just around the register blocks, and a k with several passes.
    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (1, 10, 7), (3, 5, 2), (7, 33, 13), (8, 32, 16), (9, 31, 40), (17, 16, 1),
        (13, 70, 300), (64, 10, 64), (25, 48, 211),
    ]

    /// Tiles to try for a kernel set: its own choice, and tiny cache blocks that force many blocks and
    /// k passes, in every register block.
    static func tiles(m: Int, n: Int, k: Int, isa: KernelISA) -> [MatmulTile] {
        [MatmulTile.choose(m: m, n: n, k: k, isa: isa)]
            + MatmulRegisterBlock.allCases.map { MatmulTile(registerBlock: $0, mc: $0.mr * 2, nc: $0.nr, kc: 5) }
    }

    // MARK: references

    static func referenceForward(
        x: [Float], w: [Float], bias: [Float]?, m: Int, n: Int, k: Int, activation: ActivationCode, slope: Float
    ) -> (y: [Double], preact: [Double], scale: [Double]) {
        var y = [Double](repeating: 0, count: m * n), z = y, scale = y
        for i in 0..<m {
            for j in 0..<n {
                var sum = Double(bias?[j] ?? 0), magnitude = abs(sum)
                for p in 0..<k {
                    sum += Double(x[i * k + p]) * Double(w[j * k + p])
                    magnitude += abs(Double(x[i * k + p]) * Double(w[j * k + p]))
                }
                z[i * n + j] = sum
                y[i * n + j] = referenceActivation(sum, activation, Double(slope))
                scale[i * n + j] = magnitude
            }
        }
        return (y, z, scale)
    }

    // MARK: forward

    func testLinearForwardMatchesReferenceForEveryActivationShapeTileAndKernelSet() {
        var random = TestRandom(seed: 1)
        for set in runnableKernelSets() {
            for (m, n, k) in Self.shapes {
                for activation in ActivationCode.allCases {
                    let x = random.floats(m * k), w = random.floats(k * n), bias = random.floats(n)
                    let useBias = random.next() & 1 == 0
                    let reference = Self.referenceForward(
                        x: x, w: w, bias: useBias ? bias : nil, m: m, n: n, k: k, activation: activation, slope: 0.1)
                    for tile in Self.tiles(m: m, n: n, k: k, isa: set.isa) {
                        let (y, preact) = runForward(set, x, w, useBias ? bias : nil, m, n, k, activation, 0.1, tile, parts: 1)
                        let label = "\(set.isa) forward \(m)x\(n)x\(k) \(activation) \(tile)"
                        assertClose(preact, reference.preact, scale: reference.scale, "\(label) preact")
                        assertClose(y, reference.y, scale: reference.scale, "\(label) output")
                    }
                }
            }
        }
    }

    func testLinearForwardIsBitIdenticalForAnyNumberOfParts() {
        var random = TestRandom(seed: 2)
        for set in runnableKernelSets() {
            for (m, n, k) in [(64, 70, 50), (5, 100, 9), (1, 33, 3), (41, 16, 200)] {
                let x = random.floats(m * k), w = random.floats(k * n), bias = random.floats(n)
                for tile in Self.tiles(m: m, n: n, k: k, isa: set.isa) {
                    let (whole, wholePreact) = runForward(set, x, w, bias, m, n, k, .geluTanh, 0, tile, parts: 1)
                    for parts in [2, 3, 5] {
                        let (split, splitPreact) = runForward(set, x, w, bias, m, n, k, .geluTanh, 0, tile, parts: parts)
                        XCTAssertEqual(bitPatterns(split), bitPatterns(whole), "\(set.isa) \(m)x\(n)x\(k) \(tile) parts \(parts)")
                        XCTAssertEqual(bitPatterns(splitPreact), bitPatterns(wholePreact))
                    }
                }
            }
        }
    }

    /// Every output element is one fused multiply-add chain over k, so the cache blocking cannot change
    /// it: a plan's tile choice never changes results.
    func testLinearForwardIsBitIdenticalForAnyTile() {
        var random = TestRandom(seed: 3)
        for set in runnableKernelSets() {
            let (m, n, k) = (19, 45, 230)
            let x = random.floats(m * k), w = random.floats(k * n)
            let tiles = Self.tiles(m: m, n: n, k: k, isa: set.isa)
            let (first, _) = runForward(set, x, w, nil, m, n, k, .relu, 0, tiles[0], parts: 1)
            for tile in tiles.dropFirst() {
                let (other, _) = runForward(set, x, w, nil, m, n, k, .relu, 0, tile, parts: 1)
                XCTAssertEqual(bitPatterns(other), bitPatterns(first), "\(set.isa) \(tile)")
            }
        }
    }

    // MARK: backward input

    func testLinearBackwardInputMatchesReferenceForEveryPreviousActivation() {
        var random = TestRandom(seed: 4)
        for set in runnableKernelSets() {
            for (m, n, k) in Self.shapes {
                for activation in ActivationCode.allCases {
                    let dy = random.floats(m * n), w = random.floats(k * n)
                    let preact = random.floatsAwayFromZero(m * k)
                    let output = preact.map { Float(referenceActivation(Double($0), activation, 0.2)) }
                    var expected = [Double](repeating: 0, count: m * k), scale = expected
                    for i in 0..<m {
                        for j in 0..<k {
                            var sum = 0.0, magnitude = 0.0
                            for p in 0..<n {
                                sum += Double(dy[i * n + p]) * Double(w[p * k + j])
                                magnitude += abs(Double(dy[i * n + p]) * Double(w[p * k + j]))
                            }
                            let derivative = referenceActivationDerivative(Double(preact[i * k + j]), activation, 0.2)
                            expected[i * k + j] = sum * derivative
                            scale[i * k + j] = magnitude * max(abs(derivative), 1)
                        }
                    }
                    for tile in Self.tiles(m: m, n: k, k: n, isa: set.isa) {
                        let dx = runBackwardInput(set, dy, w, m, n, k, activation, 0.2, output, preact, tile, parts: 1)
                        // The derivative from a Float output differs from the exact one by a few ulps of y.
                        assertClose(dx, expected, scale: scale, relative: 2e-5, "\(set.isa) backward input \(m)x\(n)x\(k) \(activation) \(tile)")
                    }
                }
            }
        }
    }

    func testLinearBackwardInputIsBitIdenticalForAnyNumberOfParts() {
        var random = TestRandom(seed: 5)
        for set in runnableKernelSets() {
            for (m, n, k) in [(64, 10, 64), (64, 64, 128), (7, 3, 45)] {
                let dy = random.floats(m * n), w = random.floats(k * n), output = random.floats(m * k, 0, 1)
                for tile in Self.tiles(m: m, n: k, k: n, isa: set.isa) {
                    let whole = runBackwardInput(set, dy, w, m, n, k, .sigmoid, 0, output, nil, tile, parts: 1)
                    for parts in [2, 3, 5] {
                        let split = runBackwardInput(set, dy, w, m, n, k, .sigmoid, 0, output, nil, tile, parts: parts)
                        XCTAssertEqual(bitPatterns(split), bitPatterns(whole), "\(set.isa) \(m)x\(n)x\(k) parts \(parts)")
                    }
                }
            }
        }
    }

    // MARK: backward weights

    func testLinearBackwardWeightsMatchesReferenceAndSumsBiasGradient() {
        var random = TestRandom(seed: 6)
        for set in runnableKernelSets() {
            for (m, n, k) in Self.shapes {
                let x = random.floats(m * k), dy = random.floats(m * n)
                // dw is [n, k]: row j is output feature j.
                var expected = [Double](repeating: 0, count: n * k), scale = expected
                for j in 0..<n {
                    for p in 0..<k {
                        for i in 0..<m {
                            expected[j * k + p] += Double(x[i * k + p]) * Double(dy[i * n + j])
                            scale[j * k + p] += abs(Double(x[i * k + p]) * Double(dy[i * n + j]))
                        }
                    }
                }
                // The bias gradient is summed in the fixed order i = 0..<m, in Float.
                let expectedBias: [Float] = (0..<n).map { j in (0..<m).reduce(Float(0)) { $0 + dy[$1 * n + j] } }
                for tile in Self.tiles(m: k, n: n, k: m, isa: set.isa) {
                    let (dw, db) = runBackwardWeights(set, x, dy, m, n, k, tile, parts: 1)
                    assertClose(dw, expected, scale: scale, "\(set.isa) weights \(m)x\(n)x\(k) \(tile)")
                    XCTAssertEqual(bitPatterns(db), bitPatterns(expectedBias), "\(set.isa) bias \(m)x\(n)x\(k)")
                }
            }
        }
    }

    func testLinearBackwardWeightsIsBitIdenticalForAnyNumberOfParts() {
        var random = TestRandom(seed: 7)
        for set in runnableKernelSets() {
            for (m, n, k) in [(64, 128, 100), (64, 10, 64), (9, 70, 3), (30, 5, 40)] {
                let x = random.floats(m * k), dy = random.floats(m * n)
                for tile in Self.tiles(m: k, n: n, k: m, isa: set.isa) {
                    let (dw, db) = runBackwardWeights(set, x, dy, m, n, k, tile, parts: 1)
                    for parts in [2, 3, 5] {
                        let (splitW, splitB) = runBackwardWeights(set, x, dy, m, n, k, tile, parts: parts)
                        XCTAssertEqual(bitPatterns(splitW), bitPatterns(dw), "\(set.isa) \(m)x\(n)x\(k) parts \(parts)")
                        XCTAssertEqual(bitPatterns(splitB), bitPatterns(db), "\(set.isa) bias, parts \(parts)")
                    }
                }
            }
        }
    }

    // MARK: ownership of output features

    /// The forward product of a layer like fc1 (more output features than rows) splits its columns and
    /// the weight gradient its columns too, both as `outputFeatureShare` says (whole panels): the part
    /// that reads a weight panel in the forward pass writes its gradient (and, in the step executor,
    /// updates it).
    func testForwardAndWeightGradientPartsOwnTheOutputFeatureShare() {
        var random = TestRandom(seed: 8)
        for set in runnableKernelSets() {
            for (m, n, k) in [(64, 128, 100), (8, 70, 33)] {
                let x = random.floats(m * k), w = random.floats(n * k), bias = random.floats(n), dy = random.floats(m * n)
                for parts in [2, 3] {
                    let forwardTile = MatmulTile.choose(m: m, n: n, k: k, isa: set.isa)
                    let weightsTile = MatmulTile.choose(m: k, n: n, k: m, isa: set.isa)
                    for part in 0..<parts {
                        let features = outputFeatureShare(outFeatures: n, part: part, parts: parts)
                        let (y, _) = runForward(set, x, w, bias, m, n, k, .relu, 0, forwardTile, parts: parts, only: [part])
                        let (dw, db) = runBackwardWeights(set, x, dy, m, n, k, weightsTile, parts: parts, only: [part])
                        for j in 0..<n {
                            let owned = features.contains(j)
                            let label = "\(set.isa) \(m)x\(n)x\(k) part \(part)/\(parts) feature \(j)"
                            XCTAssertEqual(!y[j].isNaN, owned, "forward column, " + label)
                            XCTAssertEqual((0..<k).allSatisfy { !dw[j * k + $0].isNaN }, owned, "gradient row, " + label)
                            XCTAssertEqual(!db[j].isNaN, owned, "bias gradient, " + label)
                        }
                    }
                }
            }
        }
    }

    func testWeightPanelsPlaceEveryElementOnceAndKeepFeaturesContiguous() {
        for (out, inFeatures) in [(1, 1), (10, 64), (32, 3), (33, 5), (128, 784)] {
            var seen = Set<Int>()
            for o in 0..<out {
                for i in 0..<inFeatures {
                    let offset = WeightPanels.offset(output: o, input: i, inFeatures: inFeatures)
                    XCTAssertTrue(seen.insert(offset).inserted)
                    XCTAssertLessThan(offset, WeightPanels.storedFloats(outFeatures: out, inFeatures: inFeatures))
                }
            }
            for parts in 1...3 {
                var covered = 0
                for part in 0..<parts {
                    let features = outputFeatureShare(outFeatures: out, part: part, parts: parts)
                    let range = WeightPanels.storedRange(features: features, outFeatures: out, inFeatures: inFeatures)
                    guard !features.isEmpty else { continue }
                    XCTAssertEqual(range.lowerBound, covered, "\(out)x\(inFeatures) part \(part)/\(parts)")
                    for o in features {
                        XCTAssertTrue(range.contains(WeightPanels.offset(output: o, input: inFeatures - 1, inFeatures: inFeatures)))
                    }
                    covered = range.upperBound
                }
                XCTAssertEqual(covered, WeightPanels.storedFloats(outFeatures: out, inFeatures: inFeatures))
            }
        }
    }

    // MARK: tile policy

    func testTileChoiceDependsOnlyOnShapeAndFitsTheCaches() {
        for isa in KernelISA.allCases {
            for (m, n, k) in [(64, 128, 784), (1000, 128, 784), (784, 128, 64), (1, 1, 1), (64, 10, 64)] {
                let tile = MatmulTile.choose(m: m, n: n, k: k, isa: isa)
                XCTAssertEqual(tile, MatmulTile.choose(m: m, n: n, k: k, isa: isa))
                XCTAssertEqual(tile.registerBlock, isa.registerBlock)
                XCTAssertEqual(tile, tile.normalized, "cache blocks are multiples of the register block")
                XCTAssertLessThanOrEqual(tile.kc * tile.nr * 4, 128 * 1024, "B micro panel fits an eighth of L2")
                XCTAssertLessThanOrEqual(tile.kc, max(k, 1))
                XCTAssertEqual(tile.kc, max(k, 1), "one pass over k at these depths")
                XCTAssertLessThanOrEqual(tile.mc * tile.kc * 4, 512 * 1024, "the A block fits half of L2")
                XCTAssertGreaterThanOrEqual(
                    workspaceFloats(tile, m, n, k), tile.mr * min(tile.kc, k) + min(tile.kc, k) * min(tile.nc, n) + tile.mr * tile.nr)
                XCTAssertGreaterThanOrEqual(workspaceFloats(tile, m, n, k), n, "room for a row in a stored feature order")
            }
        }
    }

    func testDeepProductsAreCutIntoEqualPasses() {
        for isa in KernelISA.allCases {
            let limit = 128 * 1024 / (isa.registerBlock.nr * 4)
            for k in [limit, limit + 1, 3 * limit + 5] {
                let tile = MatmulTile.choose(m: 64, n: 128, k: k, isa: isa)
                let passes = (k + tile.kc - 1) / tile.kc
                XCTAssertLessThanOrEqual(tile.kc, limit, "\(isa) k=\(k)")
                XCTAssertEqual(passes, (k + limit - 1) / limit, "\(isa) k=\(k): as few passes as the limit allows")
                XCTAssertLessThan(passes * tile.kc - k, passes, "\(isa) k=\(k): equal passes")
            }
        }
    }

    func testTileRoundTripsThroughJSON() throws {
        let tile = MatmulTile.choose(m: 64, n: 128, k: 784, isa: .avx512)
        let decoded = try JSONDecoder().decode(MatmulTile.self, from: JSONEncoder().encode(tile))
        XCTAssertEqual(decoded, tile)
    }

    // MARK: runners

    /// Runs every part in turn, each with its own workspace; unwritten outputs stay NaN and fail.
    private func runForward(
        _ set: KernelSet, _ x: [Float], _ weight: [Float], _ bias: [Float]?, _ m: Int, _ n: Int, _ k: Int,
        _ activation: ActivationCode, _ slope: Float, _ tile: MatmulTile, parts: Int, only: [Int]? = nil
    ) -> ([Float], [Float]) {
        let w = weightPanels(weight, out: n, in: k)
        var y = [Float](repeating: .nan, count: m * n), preact = y
        let perPart = workspaceFloats(tile, m, n, k)
        var workspace = [Float](repeating: .nan, count: perPart * parts)
        let biasCopy = bias ?? []
        x.withUnsafeBufferPointer { x in
            w.withUnsafeBufferPointer { w in
                biasCopy.withUnsafeBufferPointer { b in
                    y.withUnsafeMutableBufferPointer { y in
                        preact.withUnsafeMutableBufferPointer { z in
                            workspace.withUnsafeMutableBufferPointer { ws in
                                for part in only ?? Array(0..<parts) {
                                    set.linearForward(
                                        x.baseAddress!, w.baseAddress!, bias == nil ? nil : b.baseAddress!,
                                        y.baseAddress!, z.baseAddress!, m, n, k, activation, slope, tile,
                                        ws.baseAddress! + part * perPart, part, parts, nil)
                                }
                            }
                        }
                    }
                }
            }
        }
        return (y, preact)
    }

    private func runBackwardInput(
        _ set: KernelSet, _ dy: [Float], _ weight: [Float], _ m: Int, _ n: Int, _ k: Int,
        _ activation: ActivationCode, _ slope: Float, _ output: [Float], _ preact: [Float]?,
        _ tile: MatmulTile, parts: Int
    ) -> [Float] {
        let w = weightPanels(weight, out: n, in: k)
        var dx = [Float](repeating: .nan, count: m * k)
        let perPart = workspaceFloats(tile, m, k, n)
        var workspace = [Float](repeating: .nan, count: perPart * parts)
        let preactCopy = preact ?? []
        dy.withUnsafeBufferPointer { dy in
            w.withUnsafeBufferPointer { w in
                output.withUnsafeBufferPointer { out in
                    preactCopy.withUnsafeBufferPointer { pre in
                        dx.withUnsafeMutableBufferPointer { dx in
                            workspace.withUnsafeMutableBufferPointer { ws in
                                for part in 0..<parts {
                                    set.linearBackwardInput(
                                        dy.baseAddress!, w.baseAddress!, dx.baseAddress!, m, n, k, activation, slope,
                                        out.baseAddress!, preact == nil ? nil : pre.baseAddress!, tile,
                                        ws.baseAddress! + part * perPart, part, parts)
                                }
                            }
                        }
                    }
                }
            }
        }
        return dx
    }

    /// Runs `only` parts (all by default) and returns dw as [n, k] row-major; unwritten outputs stay NaN.
    private func runBackwardWeights(
        _ set: KernelSet, _ x: [Float], _ dy: [Float], _ m: Int, _ n: Int, _ k: Int, _ tile: MatmulTile, parts: Int,
        only: [Int]? = nil
    ) -> ([Float], [Float]) {
        var dw = [Float](repeating: .nan, count: WeightPanels.storedFloats(outFeatures: n, inFeatures: k))
        var db = [Float](repeating: .nan, count: n)
        let perPart = workspaceFloats(tile, k, n, m)
        var workspace = [Float](repeating: .nan, count: perPart * parts)
        x.withUnsafeBufferPointer { x in
            dy.withUnsafeBufferPointer { dy in
                dw.withUnsafeMutableBufferPointer { dw in
                    db.withUnsafeMutableBufferPointer { db in
                        workspace.withUnsafeMutableBufferPointer { ws in
                            for part in only ?? Array(0..<parts) {
                                set.linearBackwardWeights(
                                    x.baseAddress!, dy.baseAddress!, dw.baseAddress!, db.baseAddress!, m, n, k, tile,
                                    ws.baseAddress! + part * perPart, part, parts, nil)
                            }
                        }
                    }
                }
            }
        }
        return (weightFromPanels(dw, out: n, in: k), db)
    }
}
