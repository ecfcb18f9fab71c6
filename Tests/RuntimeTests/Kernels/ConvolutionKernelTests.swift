import Execution
import KernelInterface
import XCTest

/// The convolution and pooling kernels against their plain Double twins on random odd shapes with
/// stride, padding, dilation and group combinations; every gradient against central differences of
/// the twin; and the same bits for any split of the work and any kernel set.
final class ConvolutionKernelTests: XCTestCase {
    /// Shapes that cover stride, asymmetric ("same") padding, dilation, groups and ragged vectors.
    static let geometries: [ConvGeometry] = [
        conv(c: 1, h: 7, w: 9, out: 3, k: (3, 3), s: (1, 1), pad: (1, 1), d: (1, 1), groups: 1),
        conv(c: 4, h: 11, w: 6, out: 6, k: (3, 2), s: (2, 1), pad: (0, 1), d: (1, 2), groups: 2),
        conv(c: 3, h: 13, w: 17, out: 5, k: (5, 5), s: (1, 1), pad: (2, 2), d: (1, 1), groups: 1),
        conv(c: 6, h: 9, w: 8, out: 6, k: (3, 3), s: (2, 3), pad: (2, 0), d: (2, 1), groups: 3),
        conv(c: 2, h: 5, w: 5, out: 7, k: (4, 4), s: (1, 1), pad: (1, 1), d: (1, 1), groups: 1),  // "same" for k=4: 1 before, 2 after
    ]

    static func conv(
        c: Int, h: Int, w: Int, out: Int, k: (Int, Int), s: (Int, Int), pad: (Int, Int), d: (Int, Int), groups: Int,
        padAfter: (Int, Int)? = nil
    ) -> ConvGeometry {
        let after = padAfter ?? pad
        let oh = (h + pad.0 + after.0 - d.0 * (k.0 - 1) - 1) / s.0 + 1
        let ow = (w + pad.1 + after.1 - d.1 * (k.1 - 1) - 1) / s.1 + 1
        return ConvGeometry(
            inChannels: c, inHeight: h, inWidth: w, outChannels: out, outHeight: oh, outWidth: ow, kernelHeight: k.0,
            kernelWidth: k.1, strideHeight: s.0, strideWidth: s.1, padTop: pad.0, padLeft: pad.1, dilationHeight: d.0,
            dilationWidth: d.1, groups: groups)
    }

    struct ConvResult {
        var y: [Float], pre: [Float], dw: [Float], db: [Float], dx: [Float]
    }

    /// Runs forward (with columns kept), weight and input gradients, splitting samples and channels
    /// into `parts` shares.
    func runConv(
        _ k: KernelSet, _ g: ConvGeometry, batch: Int, x: [Float], w: [Float], b: [Float], dy: [Float],
        code: ActivationCode, parts: Int
    ) -> ConvResult {
        var y = [Float](repeating: .nan, count: batch * g.outputFloats), pre = y
        var columns = [Float](repeating: .nan, count: batch * g.columnFloats)
        var dw = [Float](repeating: .nan, count: g.weightFloats), db = [Float](repeating: .nan, count: g.outChannels)
        var dx = [Float](repeating: .nan, count: batch * g.inputFloats)
        var scratch = [Float](repeating: .nan, count: g.patchSize * g.outPixels)
        var weightScratch = [Float](repeating: .nan, count: g.weightGradientScratchFloats(rows: g.patchSize))
        for part in 0..<parts {
            let samples = partRange(count: batch, granule: 1, part: part, parts: parts)
            k.conv2dForward(x, w, b, &y, &pre, &columns, g.columnFloats, g, code, 0.1, samples.lowerBound, samples.upperBound)
        }
        for part in 0..<parts {
            let patchRows = partRange(count: g.patchSize, granule: 1, part: part, parts: parts)
            k.conv2dBackwardWeights(x, dy, &dw, &db, &weightScratch, batch, g, patchRows.lowerBound, patchRows.upperBound)
            let samples = partRange(count: batch, granule: 1, part: part, parts: parts)
            k.conv2dBackwardInput(dy, w, &dx, &scratch, g, samples.lowerBound, samples.upperBound)
        }
        return ConvResult(y: y, pre: pre, dw: dw, db: db, dx: dx)
    }

    func testConvolutionMatchesReference() {
        var random = TestRandom(seed: 18)
        for (index, g) in Self.geometries.enumerated() {
            let batch = 3
            let x = random.floats(batch * g.inputFloats), w = random.floats(g.weightFloats), b = random.floats(g.outChannels)
            let dy = random.floats(batch * g.outputFloats)
            let expected = referenceConv2d(x.map(Double.init), w.map(Double.init), b.map(Double.init), g, batch: batch)
            let gradients = referenceConv2dGradients(x.map(Double.init), w.map(Double.init), dy.map(Double.init), g, batch: batch)
            for k in runnableKernelSets() {
                let result = runConv(k, g, batch: batch, x: x, w: w, b: b, dy: dy, code: .relu, parts: 1)
                let context = "geometry \(index) \(k.isa)"
                assertClose(result.pre, expected, relative: 1e-5, absolute: 1e-5, "\(context) preactivation")
                assertClose(result.y, expected.map { max($0, 0) }, relative: 1e-5, absolute: 1e-5, "\(context) relu output")
                assertClose(result.dw, gradients.dw, relative: 1e-5, absolute: 1e-4, "\(context) weight gradient")
                assertClose(result.db, gradients.db, relative: 1e-5, absolute: 1e-4, "\(context) bias gradient")
                assertClose(result.dx, gradients.dx, relative: 1e-5, absolute: 1e-4, "\(context) input gradient")
            }
        }
    }

    /// The twin's gradients against central differences of the twin's forward, so the kernels'
    /// gradients (checked against the twin above) are the derivative of what the forward computes.
    func testConvolutionGradientsMatchFiniteDifferences() {
        var random = TestRandom(seed: 7)
        for g in Self.geometries {
            let batch = 2
            let x = random.floats(batch * g.inputFloats).map(Double.init), w = random.floats(g.weightFloats).map(Double.init)
            let r = random.floats(batch * g.outputFloats).map(Double.init)
            // L = sum(conv(x, w) * r): dL/dy = r.
            let loss = { (x: [Double], w: [Double]) in zip(referenceConv2d(x, w, nil, g, batch: batch), r).reduce(0) { $0 + $1.0 * $1.1 } }
            let kernel = runConv(
                runnableKernelSets()[0], g, batch: batch, x: x.map(Float.init), w: w.map(Float.init),
                b: [Float](repeating: 0, count: g.outChannels), dy: r.map(Float.init), code: .identity, parts: 1)
            let h = 1e-4
            for i in stride(from: 0, to: x.count, by: max(1, x.count / 23)) {
                var plus = x, minus = x
                plus[i] += h
                minus[i] -= h
                let numeric = (loss(plus, w) - loss(minus, w)) / (2 * h)
                XCTAssertEqual(Double(kernel.dx[i]), numeric, accuracy: 1e-3 * max(1, abs(numeric)), "dx[\(i)] of \(g)")
            }
            for i in stride(from: 0, to: w.count, by: max(1, w.count / 17)) {
                var plus = w, minus = w
                plus[i] += h
                minus[i] -= h
                let numeric = (loss(x, plus) - loss(x, minus)) / (2 * h)
                XCTAssertEqual(Double(kernel.dw[i]), numeric, accuracy: 1e-3 * max(1, abs(numeric)), "dw[\(i)] of \(g)")
            }
        }
    }

    func testConvolutionBitsDoNotDependOnSplitOrKernelSet() {
        var random = TestRandom(seed: 3)
        for g in Self.geometries {
            let batch = 5
            let x = random.floats(batch * g.inputFloats), w = random.floats(g.weightFloats), b = random.floats(g.outChannels)
            let dy = random.floats(batch * g.outputFloats)
            let sets = runnableKernelSets()
            let reference = runConv(sets[0], g, batch: batch, x: x, w: w, b: b, dy: dy, code: .leakyRelu, parts: 1)
            for k in sets {
                for parts in [1, 2, 3] {
                    let result = runConv(k, g, batch: batch, x: x, w: w, b: b, dy: dy, code: .leakyRelu, parts: parts)
                    XCTAssertEqual(bitPatterns(result.y), bitPatterns(reference.y), "\(k.isa) \(parts) parts")
                    XCTAssertEqual(bitPatterns(result.dw), bitPatterns(reference.dw), "\(k.isa) \(parts) parts")
                    XCTAssertEqual(bitPatterns(result.db), bitPatterns(reference.db), "\(k.isa) \(parts) parts")
                    XCTAssertEqual(bitPatterns(result.dx), bitPatterns(reference.dx), "\(k.isa) \(parts) parts")
                }
            }
        }
    }

    /// A larger layer, whose columns would outgrow L2, split into patch-row shares of several sizes.
    func testWeightGradientOfALargerLayer() {
        var random = TestRandom(seed: 9)
        let g = Self.conv(c: 16, h: 20, w: 20, out: 5, k: (5, 5), s: (1, 1), pad: (2, 2), d: (1, 1), groups: 1)
        let batch = 3
        let x = random.floats(batch * g.inputFloats), w = random.floats(g.weightFloats), b = random.floats(g.outChannels)
        let dy = random.floats(batch * g.outputFloats)
        let gradients = referenceConv2dGradients(x.map(Double.init), w.map(Double.init), dy.map(Double.init), g, batch: batch)
        let sets = runnableKernelSets()
        let reference = runConv(sets[0], g, batch: batch, x: x, w: w, b: b, dy: dy, code: .identity, parts: 1)
        assertClose(reference.dw, gradients.dw, relative: 1e-5, absolute: 1e-3, "weight gradient")
        for k in sets {
            for parts in [1, 2, 7] {
                let result = runConv(k, g, batch: batch, x: x, w: w, b: b, dy: dy, code: .identity, parts: parts)
                XCTAssertEqual(bitPatterns(result.dw), bitPatterns(reference.dw), "\(k.isa) \(parts) parts")
            }
        }
    }

    /// Evaluation reuses one scratch for every sample's columns (column stride 0): the same outputs.
    func testReusedColumnScratchGivesTheSameOutputs() {
        var random = TestRandom(seed: 5)
        let g = Self.geometries[3], batch = 4
        let x = random.floats(batch * g.inputFloats), w = random.floats(g.weightFloats), b = random.floats(g.outChannels)
        let k = runnableKernelSets()[0]
        let kept = runConv(k, g, batch: batch, x: x, w: w, b: b, dy: [Float](repeating: 0, count: batch * g.outputFloats), code: .relu, parts: 1)
        var y = [Float](repeating: .nan, count: batch * g.outputFloats)
        var scratch = [Float](repeating: .nan, count: g.columnFloats)
        k.conv2dForward(x, w, b, &y, nil, &scratch, 0, g, .relu, 0, 0, batch)
        XCTAssertEqual(bitPatterns(y), bitPatterns(kept.y))
    }

    // MARK: pooling

    static let pools: [PoolGeometry] = [
        pool(c: 3, h: 8, w: 8, k: (2, 2), s: (2, 2), pad: (0, 0), ceil: false),
        pool(c: 2, h: 7, w: 9, k: (3, 3), s: (2, 2), pad: (1, 1), ceil: true),
        pool(c: 4, h: 5, w: 6, k: (3, 2), s: (1, 2), pad: (1, 0), ceil: false),
        pool(c: 1, h: 6, w: 6, k: (6, 6), s: (6, 6), pad: (0, 0), ceil: false),
    ]

    static func pool(c: Int, h: Int, w: Int, k: (Int, Int), s: (Int, Int), pad: (Int, Int), ceil: Bool) -> PoolGeometry {
        func size(_ n: Int, _ k: Int, _ s: Int, _ p: Int) -> Int {
            let span = n + 2 * p - k
            var out = (ceil ? span + s - 1 : span) / s + 1
            if ceil && (out - 1) * s >= n + p { out -= 1 }
            return out
        }
        return PoolGeometry(
            channels: c, inHeight: h, inWidth: w, outHeight: size(h, k.0, s.0, pad.0), outWidth: size(w, k.1, s.1, pad.1),
            kernelHeight: k.0, kernelWidth: k.1, strideHeight: s.0, strideWidth: s.1, padTop: pad.0, padLeft: pad.1)
    }

    func testPoolingMatchesReferenceAndFiniteDifferences() {
        var random = TestRandom(seed: 11)
        for (index, g) in Self.pools.enumerated() {
            let planes = 2 * g.channels
            let x = random.floats(planes * g.inPixels), dy = random.floats(planes * g.outPixels)
            for isMax in [true, false] {
                let expected = referencePool(x.map(Double.init), g, planes: planes, isMax: isMax)
                for k in runnableKernelSets() {
                    for parts in [1, 2, 3] {
                        let (y, indices, dx) = poolInParts(k, x: x, dy: dy, g, planes: planes, isMax: isMax, parts: parts)
                        let context = "pool \(index) max \(isMax) \(k.isa) \(parts) parts"
                        assertClose(y, expected.y, relative: 1e-6, absolute: 1e-6, context)
                        if isMax { XCTAssertEqual(indices.map(Int.init), expected.argmax, context) }
                        // Central differences of the twin (random values: no ties within 2h).
                        let h = 1e-5
                        for i in stride(from: 0, to: x.count, by: max(1, x.count / 19)) {
                            var plus = x.map(Double.init), minus = plus
                            plus[i] += h
                            minus[i] -= h
                            let lp = zip(referencePool(plus, g, planes: planes, isMax: isMax).y, dy).reduce(0) { $0 + $1.0 * Double($1.1) }
                            let lm = zip(referencePool(minus, g, planes: planes, isMax: isMax).y, dy).reduce(0) { $0 + $1.0 * Double($1.1) }
                            XCTAssertEqual(Double(dx[i]), (lp - lm) / (2 * h), accuracy: 1e-3, "\(context) dx[\(i)]")
                        }
                    }
                }
            }
        }
    }
}
