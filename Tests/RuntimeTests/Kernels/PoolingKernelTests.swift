import Execution
import KernelInterface
import XCTest

/// The vectorized 2x2 / 2 pool against the plain Float loop it replaces, bit for bit: ties (the first
/// maximum's index wins), NaNs with distinct payloads (the last NaN in window order wins), -0 against +0,
/// and gradients of -0, on row widths narrower than, equal to and wider than a vector, odd last rows and
/// columns, for every kernel set and split.
final class PoolingKernelTests: XCTestCase {
    /// (height, width) of input planes; the outputs are floor(h / 2) x floor(w / 2).
    static let planes2x2: [(Int, Int)] = [(2, 2), (5, 7), (10, 10), (6, 16), (9, 17), (28, 28), (4, 33), (3, 40), (11, 3)]

    /// The general loop's rule written plainly in Float: window order, "larger or NaN takes the place";
    /// the average as 0 + each value in order, divided by the window size. Gradients accumulate into zeros.
    func floatPool2x2(_ x: [Float], _ g: PoolGeometry, planes: Int, isMax: Bool) -> (y: [Float], argmax: [Int32]) {
        var y: [Float] = [], argmax: [Int32] = []
        for plane in 0..<planes {
            for oy in 0..<g.outHeight {
                for ox in 0..<g.outWidth {
                    var best = -Float.infinity, at = 2 * oy * g.inWidth + 2 * ox, sum: Float = 0
                    for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                        let index = (2 * oy + dy) * g.inWidth + 2 * ox + dx
                        let v = x[plane * g.inPixels + index]
                        sum += v
                        if v > best || v.isNaN {
                            best = v
                            at = index
                        }
                    }
                    y.append(isMax ? best : sum / 4)
                    argmax.append(Int32(at))
                }
            }
        }
        return (y, argmax)
    }

    func floatPool2x2Backward(_ dy: [Float], argmax: [Int32]?, _ g: PoolGeometry, planes: Int) -> [Float] {
        var dx = [Float](repeating: 0, count: planes * g.inPixels)
        for plane in 0..<planes {
            for oy in 0..<g.outHeight {
                for ox in 0..<g.outWidth {
                    let o = plane * g.outPixels + oy * g.outWidth + ox
                    if let argmax {
                        dx[plane * g.inPixels + Int(argmax[o])] += dy[o]
                    } else {
                        for (r, c) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                            dx[plane * g.inPixels + (2 * oy + r) * g.inWidth + 2 * ox + c] += dy[o] / 4
                        }
                    }
                }
            }
        }
        return dx
    }

    /// Small integers (many ties), signed zeros, infinities and NaNs of several payloads.
    func awkwardValues(_ count: Int, _ random: inout TestRandom) -> [Float] {
        let specials: [Float] = [0, -0.0, .infinity, -.infinity, Float(nan: 1, signaling: false), Float(nan: 7, signaling: false), -.nan]
        return (0..<count).map { _ in
            let r = random.next() % 16
            return r < 3 ? specials[Int(random.next() % UInt64(specials.count))] : Float(Int(random.next() % 5)) - 2
        }
    }

    /// The bits of v, any NaN as the one default NaN.
    func canonicalBits(_ v: Float) -> UInt32 { v.isNaN ? Float.nan.bitPattern : v.bitPattern }

    func testVectorized2x2PoolMatchesTheFloatLoopBitForBit() {
        var random = TestRandom(seed: 29)
        for (h, w) in Self.planes2x2 {
            let g = ConvolutionKernelTests.pool(c: 3, h: h, w: w, k: (2, 2), s: (2, 2), pad: (0, 0), ceil: false)
            XCTAssertEqual(g.outHeight, h / 2)
            XCTAssertEqual(g.outWidth, w / 2)
            let planes = 2 * g.channels
            let x = awkwardValues(planes * g.inPixels, &random)
            var dy = random.floats(planes * g.outPixels)
            for i in stride(from: 0, to: dy.count, by: 5) { dy[i] = -0.0 }
            for isMax in [true, false] {
                let expected = floatPool2x2(x, g, planes: planes, isMax: isMax)
                let expectedDx = floatPool2x2Backward(dy, argmax: isMax ? expected.argmax : nil, g, planes: planes)
                for k in runnableKernelSets() {
                    for parts in [1, 2, 3] {
                        let (y, indices, dx) = poolInParts(k, x: x, dy: dy, g, planes: planes, isMax: isMax, parts: parts, yFill: 99)
                        let context = "\(h)x\(w) max \(isMax) \(k.isa) \(parts) parts"
                        // A max selects, so even a NaN's payload is the one selected; a sum of two NaNs may
                        // carry either payload (the compiler may swap an addition's operands).
                        if isMax {
                            XCTAssertEqual(bitPatterns(y), bitPatterns(expected.y), context)
                        } else {
                            XCTAssertEqual(y.map(canonicalBits), expected.y.map(canonicalBits), context)
                        }
                        if isMax { XCTAssertEqual(indices, expected.argmax, context) }
                        XCTAssertEqual(bitPatterns(dx), bitPatterns(expectedDx), context)
                    }
                }
            }
        }
    }

    /// Max pools with dilation, averages that do not count the padding, and adaptive averages of sizes
    /// that do and do not divide the input (and one larger than it).
    static let optionPools: [PoolGeometry] = {
        var dilated = ConvolutionKernelTests.pool(c: 2, h: 9, w: 11, k: (3, 2), s: (1, 2), pad: (1, 1), ceil: false)
        dilated.dilationHeight = 2
        dilated.dilationWidth = 3
        dilated.outHeight = (9 + 2 - 2 * 2 - 1) / 1 + 1
        dilated.outWidth = (11 + 2 - 3 * 1 - 1) / 2 + 1
        var uncounted = ConvolutionKernelTests.pool(c: 3, h: 7, w: 8, k: (3, 3), s: (2, 2), pad: (1, 1), ceil: true)
        uncounted.countIncludePad = false
        func adaptive(_ h: Int, _ w: Int, _ oh: Int, _ ow: Int) -> PoolGeometry {
            PoolGeometry(
                channels: 2, inHeight: h, inWidth: w, outHeight: oh, outWidth: ow, kernelHeight: 1, kernelWidth: 1, strideHeight: 1,
                strideWidth: 1, padTop: 0, padLeft: 0, adaptive: true)
        }
        return [dilated, uncounted, adaptive(7, 9, 3, 4), adaptive(6, 6, 3, 2), adaptive(3, 5, 4, 7)]
    }()

    func testPoolingOptionsMatchTheReferenceAndFiniteDifferencesInEverySplitAndKernelSet() {
        var random = TestRandom(seed: 31)
        for (index, g) in Self.optionPools.enumerated() {
            let planes = 2 * g.channels
            let x = random.floats(planes * g.inPixels), dy = random.floats(planes * g.outPixels)
            for isMax in g.dilationHeight > 1 ? [true] : [false] {
                let expected = referencePool(x.map(Double.init), g, planes: planes, isMax: isMax)
                var first: [UInt32]? = nil
                for k in runnableKernelSets() {
                    for parts in [1, 2, 3] {
                        let (y, indices, dx) = poolInParts(k, x: x, dy: dy, g, planes: planes, isMax: isMax, parts: parts)
                        let context = "pool \(index) \(k.isa) \(parts) parts"
                        assertClose(y, expected.y, relative: 1e-6, absolute: 1e-6, context)
                        if isMax { XCTAssertEqual(indices.map(Int.init), expected.argmax, context) }
                        let bits = bitPatterns(y) + bitPatterns(dx)
                        if let first { XCTAssertEqual(bits, first, "\(context): the same bits in every split and kernel set") }
                        first = first ?? bits
                        let h = 1e-5
                        for i in 0..<x.count {
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

    /// The max pool's backward pass with the ReLU's derivative applied (pool-relu-backward) against the
    /// pool's backward pass followed by the ReLU's, bit for bit, and against the Float reference: 2x2
    /// pools of every width class (the derivative from the ReLU output and from the pooled values) and a
    /// dilated overlapping pool (from the ReLU output after the scatter), awkward inputs
    /// (signed zeros, infinities, NaNs, ties), gradients with -0 and infinities, every kernel set and split.
    func testMaxPoolReluBackwardMatchesThePoolThenTheReluBitForBit() {
        var random = TestRandom(seed: 37)
        var pools = Self.planes2x2.map { ConvolutionKernelTests.pool(c: 3, h: $0.0, w: $0.1, k: (2, 2), s: (2, 2), pad: (0, 0), ceil: false) }
        pools.append(Self.optionPools[0])
        for g in pools {
            let planes = 2 * g.channels
            let x = awkwardValues(planes * g.inPixels, &random)
            var dy = random.floats(planes * g.outPixels)
            for i in stride(from: 0, to: dy.count, by: 5) { dy[i] = -0.0 }
            for i in stride(from: 3, to: dy.count, by: 11) { dy[i] = -.infinity }
            var expectedDx: [Float]? = nil
            if g.isInside2x2 {
                let reference = floatPool2x2(x, g, planes: planes, isMax: true)
                let poolDx = floatPool2x2Backward(dy, argmax: reference.argmax, g, planes: planes)
                expectedDx = zip(poolDx, x).map { $0 * ($1 > 0 ? 1 : 0) }
            }
            for k in runnableKernelSets() {
                var y = [Float](repeating: 0, count: planes * g.outPixels)
                var indices = [Int32](repeating: -1, count: y.count)
                k.pool2dForward(x, &y, &indices, g, true, 0, planes)
                var poolDx = [Float](repeating: .nan, count: x.count), separate = poolDx
                k.pool2dBackward(dy, indices, &poolDx, g, 0, planes)
                k.activationBackward(poolDx, nil, x, &separate, x.count, .relu, 0, 0, 1)
                if let expectedDx { XCTAssertEqual(separate.map(canonicalBits), expectedDx.map(canonicalBits), "\(g) \(k.isa) reference") }
                // Non-overlapping windows may read the pooled values in place of the ReLU output.
                for pooled in g.isInside2x2 ? [false, true] : [false] {
                    for parts in [1, 2, 3] {
                        var dx = [Float](repeating: .nan, count: x.count)
                        for part in 0..<parts {
                            let share = partRange(count: planes, granule: 1, part: part, parts: parts)
                            k.maxPool2dReluBackward(dy, indices, pooled ? y : x, pooled, &dx, g, share.lowerBound, share.upperBound)
                        }
                        let context = "\(g.inHeight)x\(g.inWidth) \(k.isa) pooled \(pooled) \(parts) parts"
                        XCTAssertEqual(bitPatterns(dx), bitPatterns(separate), context)
                    }
                }
            }
        }
    }
}
