import Execution
import KernelInterface
import XCTest

/// The sample-lane convolution input gradient: matches the Double twin and finite differences, and
/// gives the same bits for any split of the samples and any kernel set. Batches 1, 15, 16, 17 and 33
/// reach partial and whole groups of sixteen samples; the shapes reach every channel block (6, 4, 2,
/// 1), blocks of four positions and single positions, padding wider than the kernel, asymmetric
/// padding, groups, 1x1 and non-square kernels.
final class SampleLaneInputGradientTests: XCTestCase {
    static let geometries: [ConvGeometry] = DirectConvolutionKernelTests.geometries + [
        ConvolutionKernelTests.conv(c: 7, h: 5, w: 9, out: 3, k: (1, 1), s: (1, 1), pad: (0, 0), d: (1, 1), groups: 1),
        ConvolutionKernelTests.conv(c: 13, h: 4, w: 11, out: 5, k: (3, 5), s: (1, 1), pad: (2, 1), d: (1, 1), groups: 1),
        ConvolutionKernelTests.conv(c: 3, h: 6, w: 6, out: 2, k: (5, 5), s: (1, 1), pad: (3, 3), d: (1, 1), groups: 1),
        ConvolutionKernelTests.conv(
            c: 10, h: 7, w: 12, out: 4, k: (3, 4), s: (1, 1), pad: (1, 2), d: (1, 1), groups: 2, padAfter: (0, 1)),
    ]

    /// dx with the batch split into `parts` shares of whole groups of sixteen samples (as the binding
    /// splits it), or of single samples with `granule` 1, each with a scratch of the planned size.
    func runSampleLanes(
        _ k: KernelSet, _ g: ConvGeometry, batch: Int, w: [Float], dy: [Float], parts: Int, granule: Int = 16
    ) -> [Float] {
        var dx = [Float](repeating: .nan, count: batch * g.inputFloats)
        for part in 0..<parts {
            let units = partRange(count: (batch + granule - 1) / granule, granule: 1, part: part, parts: parts)
            var scratch = [Float](repeating: .nan, count: g.sampleLaneInputGradientFloats)
            k.conv2dBackwardInputSampleLanes(
                dy, w, &dx, &scratch, g, units.lowerBound * granule, min(units.upperBound * granule, batch))
        }
        return dx
    }

    func testSampleLaneInputGradientMatchesTheTwin() {
        var random = TestRandom(seed: 41)
        for (index, g) in Self.geometries.enumerated() {
            XCTAssertTrue(g.allowsDirect)
            // The largest shape (20 channels of 28 x 30) with one batch, to keep the Double twin quick.
            for batch in g.inputFloats > 4000 ? [17] : [1, 15, 16, 17, 33] {
                let x = random.floats(batch * g.inputFloats), w = random.floats(g.weightFloats)
                let dy = random.floats(batch * g.outputFloats)
                let gradients = referenceConv2dGradients(x.map(Double.init), w.map(Double.init), dy.map(Double.init), g, batch: batch)
                for k in runnableKernelSets() {
                    let dx = runSampleLanes(k, g, batch: batch, w: w, dy: dy, parts: 1)
                    assertClose(dx, gradients.dx, relative: 1e-5, absolute: 1e-4, "geometry \(index) batch \(batch) \(k.isa)")
                }
            }
        }
    }

    func testSampleLaneInputGradientMatchesFiniteDifferences() {
        var random = TestRandom(seed: 43)
        // The largest shape (20 channels of 28 x 30) is left to the twin test: its Double reference
        // convolutions would be three quarters of this test's time.
        for g in Self.geometries where g.inputFloats <= 4000 {
            let batch = 2
            let x = random.floats(batch * g.inputFloats).map(Double.init), w = random.floats(g.weightFloats).map(Double.init)
            let r = random.floats(batch * g.outputFloats).map(Double.init)
            // L = sum(conv(x, w) * r): dL/dy = r.
            let loss = { (x: [Double]) in zip(referenceConv2d(x, w, nil, g, batch: batch), r).reduce(0) { $0 + $1.0 * $1.1 } }
            let dx = runSampleLanes(runnableKernelSets()[0], g, batch: batch, w: w.map(Float.init), dy: r.map(Float.init), parts: 1)
            // L is linear in x, so a forward difference is as exact as a central one, at one reference
            // convolution per probe.
            let h = 1e-4, base = loss(x)
            for i in stride(from: 0, to: x.count, by: max(1, x.count / 29)) {
                var plus = x
                plus[i] += h
                let numeric = (loss(plus) - base) / h
                XCTAssertEqual(Double(dx[i]), numeric, accuracy: 1e-3 * max(1, abs(numeric)), "dx[\(i)] of \(g)")
            }
        }
    }

    func testSampleLaneBitsDoNotDependOnSplitOrKernelSet() {
        var random = TestRandom(seed: 47)
        for g in Self.geometries {
            let batch = 37
            let w = random.floats(g.weightFloats), dy = random.floats(batch * g.outputFloats)
            let sets = runnableKernelSets()
            let reference = runSampleLanes(sets[0], g, batch: batch, w: w, dy: dy, parts: 1)
            for k in sets {
                for parts in [1, 2, 3] {
                    for granule in [16, 1] {
                        let dx = runSampleLanes(k, g, batch: batch, w: w, dy: dy, parts: parts, granule: granule)
                        XCTAssertEqual(bitPatterns(dx), bitPatterns(reference), "\(k.isa) \(parts) parts of \(granule) samples, \(g)")
                    }
                }
            }
        }
    }
}
