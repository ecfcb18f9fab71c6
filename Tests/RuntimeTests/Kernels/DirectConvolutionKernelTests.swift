import Execution
import KernelInterface
import XCTest

/// The direct (row-shifted copy) convolution forward: it gives the im2col kernel's exact bits, and the
/// same bits for any split of the samples and any kernel set. The shapes reach every register block
/// (8, 6, 4, 2 and 1 channels; 1 to 4 vectors), padding wider than the kernel, asymmetric padding,
/// groups, ragged last vectors and channels copied in chunks.
final class DirectConvolutionKernelTests: XCTestCase {
    static let geometries: [ConvGeometry] = [
        ConvolutionKernelTests.conv(c: 1, h: 28, w: 28, out: 6, k: (5, 5), s: (1, 1), pad: (2, 2), d: (1, 1), groups: 1),
        ConvolutionKernelTests.conv(c: 6, h: 14, w: 14, out: 16, k: (5, 5), s: (1, 1), pad: (0, 0), d: (1, 1), groups: 1),
        ConvolutionKernelTests.conv(c: 3, h: 13, w: 17, out: 5, k: (5, 5), s: (1, 1), pad: (2, 2), d: (1, 1), groups: 1),
        ConvolutionKernelTests.conv(c: 1, h: 7, w: 9, out: 3, k: (3, 3), s: (1, 1), pad: (1, 1), d: (1, 1), groups: 1),
        ConvolutionKernelTests.conv(
            c: 2, h: 5, w: 5, out: 7, k: (4, 4), s: (1, 1), pad: (1, 1), d: (1, 1), groups: 1, padAfter: (2, 2)),
        ConvolutionKernelTests.conv(c: 6, h: 9, w: 8, out: 9, k: (3, 2), s: (1, 1), pad: (0, 1), d: (1, 1), groups: 3),
        ConvolutionKernelTests.conv(c: 4, h: 6, w: 19, out: 7, k: (2, 5), s: (1, 1), pad: (2, 0), d: (1, 1), groups: 1),
        ConvolutionKernelTests.conv(c: 5, h: 3, w: 40, out: 13, k: (1, 3), s: (1, 1), pad: (0, 1), d: (1, 1), groups: 1),
        ConvolutionKernelTests.conv(c: 8, h: 11, w: 11, out: 8, k: (3, 3), s: (1, 1), pad: (1, 1), d: (1, 1), groups: 8),
        // 20 input channels copied 2 at a time (3 copies of 30 x 30 floats each): partial sums carried
        // between chunks.
        ConvolutionKernelTests.conv(c: 20, h: 28, w: 30, out: 9, k: (3, 3), s: (1, 1), pad: (1, 1), d: (1, 1), groups: 1),
    ]

    struct DirectResult {
        var y: [Float], pre: [Float]
    }

    /// The direct forward, samples split into `parts` shares, each with its own scratch of exactly the
    /// size the planner reserves.
    func runDirect(
        _ k: KernelSet, _ g: ConvGeometry, batch: Int, x: [Float], w: [Float], b: [Float]?, code: ActivationCode, parts: Int
    ) -> DirectResult {
        var y = [Float](repeating: .nan, count: batch * g.outputFloats), pre = y
        for part in 0..<parts {
            let samples = partRange(count: batch, granule: 1, part: part, parts: parts)
            var scratch = [Float](repeating: .nan, count: g.shiftedRowFloats)
            if let b {
                k.conv2dForwardDirect(x, w, b, &y, &pre, &scratch, g, code, 0.1, samples.lowerBound, samples.upperBound)
            } else {
                k.conv2dForwardDirect(x, w, nil, &y, &pre, &scratch, g, code, 0.1, samples.lowerBound, samples.upperBound)
            }
        }
        return DirectResult(y: y, pre: pre)
    }

    func testEveryShapeAllowsDirect() {
        XCTAssertTrue(Self.geometries.allSatisfy(\.allowsDirect))
        XCTAssertEqual(Self.geometries.last?.shiftedRowChunkChannels, 2, "the last shape's forward runs in chunks")
        XCTAssertFalse(ConvolutionKernelTests.geometries[1].allowsDirect, "stride 2")
        XCTAssertFalse(ConvolutionKernelTests.conv(c: 1, h: 9, w: 9, out: 1, k: (3, 3), s: (1, 1), pad: (0, 0), d: (2, 1), groups: 1).allowsDirect)
    }

    func testDirectForwardGivesTheIm2colBits() {
        var random = TestRandom(seed: 29)
        for (index, g) in Self.geometries.enumerated() {
            let batch = 3
            let x = random.floats(batch * g.inputFloats), w = random.floats(g.weightFloats), b = random.floats(g.outChannels)
            for k in runnableKernelSets() {
                for (bias, code) in [(b as [Float]?, ActivationCode.relu), (nil, .leakyRelu)] {
                    var y = [Float](repeating: .nan, count: batch * g.outputFloats), pre = y
                    var columns = [Float](repeating: .nan, count: g.columnFloats)
                    if let bias {
                        k.conv2dForward(x, w, bias, &y, &pre, &columns, 0, g, code, 0.1, 0, batch)
                    } else {
                        k.conv2dForward(x, w, nil, &y, &pre, &columns, 0, g, code, 0.1, 0, batch)
                    }
                    let direct = runDirect(k, g, batch: batch, x: x, w: w, b: bias, code: code, parts: 1)
                    let context = "geometry \(index) \(k.isa) bias \(bias != nil)"
                    XCTAssertEqual(bitPatterns(direct.y), bitPatterns(y), "\(context) output")
                    XCTAssertEqual(bitPatterns(direct.pre), bitPatterns(pre), "\(context) preactivation")
                }
            }
        }
    }

    func testDirectBitsDoNotDependOnSplitOrKernelSet() {
        var random = TestRandom(seed: 37)
        for g in Self.geometries {
            let batch = 5
            let x = random.floats(batch * g.inputFloats), w = random.floats(g.weightFloats), b = random.floats(g.outChannels)
            let sets = runnableKernelSets()
            let reference = runDirect(sets[0], g, batch: batch, x: x, w: w, b: b, code: .leakyRelu, parts: 1)
            for k in sets {
                for parts in [1, 2, 3] {
                    let result = runDirect(k, g, batch: batch, x: x, w: w, b: b, code: .leakyRelu, parts: parts)
                    XCTAssertEqual(bitPatterns(result.y), bitPatterns(reference.y), "\(k.isa) \(parts) parts")
                    XCTAssertEqual(bitPatterns(result.pre), bitPatterns(reference.pre), "\(k.isa) \(parts) parts")
                }
            }
        }
    }
}
