import Execution
import KernelInterface
import XCTest

/// The stride-1 weight gradient against the plain Double twin on odd shapes (padding before
/// and after, dilation, groups, kernels taller than a register block, channel counts that leave short
/// blocks, rows longer than a vector, batches longer than a pass), against central differences, and
/// with the same bits for any split of its tasks and any kernel set.
final class Stride1WeightGradientTests: XCTestCase {
    typealias Tests = ConvolutionKernelTests

    static let geometries: [ConvGeometry] = [
        Tests.conv(c: 1, h: 28, w: 28, out: 6, k: (5, 5), s: (1, 1), pad: (2, 2), d: (1, 1), groups: 1),  // LeNet's conv1
        Tests.conv(c: 6, h: 14, w: 14, out: 16, k: (5, 5), s: (1, 1), pad: (0, 0), d: (1, 1), groups: 1),  // LeNet's conv2
        Tests.conv(c: 3, h: 7, w: 9, out: 5, k: (3, 3), s: (1, 1), pad: (1, 1), d: (1, 1), groups: 1),
        Tests.conv(c: 4, h: 11, w: 6, out: 6, k: (3, 2), s: (1, 1), pad: (0, 1), d: (1, 2), groups: 2),
        Tests.conv(c: 6, h: 9, w: 19, out: 9, k: (2, 7), s: (1, 1), pad: (2, 0), d: (2, 1), groups: 3),
        Tests.conv(c: 2, h: 13, w: 5, out: 5, k: (7, 2), s: (1, 1), pad: (1, 2), d: (1, 3), groups: 1),
        Tests.conv(c: 2, h: 5, w: 5, out: 7, k: (4, 4), s: (1, 1), pad: (1, 1), d: (1, 1), groups: 1, padAfter: (2, 2)),
        Tests.conv(c: 2, h: 3, w: 37, out: 1, k: (1, 1), s: (1, 1), pad: (0, 0), d: (1, 1), groups: 1),
        Tests.conv(c: 1, h: 6, w: 4, out: 2, k: (6, 11), s: (1, 1), pad: (0, 3), d: (1, 1), groups: 1, padAfter: (0, 4)),
        Tests.conv(c: 1, h: 4, w: 12, out: 3, k: (11, 3), s: (1, 1), pad: (4, 0), d: (1, 1), groups: 1, padAfter: (3, 0)),
    ]

    struct Gradients {
        var dw: [Float], db: [Float]
    }

    /// Runs the kernel in `parts` task shares, each with its own scratch of exactly the layout's size
    /// (filled with NaN, starting one float past a 64-byte boundary) followed by guard values.
    func runStride1(_ k: KernelSet, _ g: ConvGeometry, batch: Int, x: [Float], dy: [Float], parts: Int, bias: Bool = true) -> Gradients {
        let layout = Stride1WeightGradientLayout(g)!
        var dw = [Float](repeating: .nan, count: g.weightFloats), db = [Float](repeating: .nan, count: g.outChannels)
        let guardFloats = 64, size = 1 + layout.scratchFloats + guardFloats
        let raw = UnsafeMutableRawPointer.allocate(byteCount: size * 4, alignment: 64)
        defer { raw.deallocate() }
        let scratch = raw.bindMemory(to: Float.self, capacity: size)
        for part in 0..<parts {
            scratch.update(repeating: .nan, count: size)
            (scratch + 1 + layout.scratchFloats).update(repeating: 12345, count: guardFloats)
            let tasks = partRange(count: layout.tasks, granule: 1, part: part, parts: parts)
            if bias {
                k.conv2dBackwardWeightsStride1(x, dy, &dw, &db, scratch + 1, batch, g, tasks.lowerBound, tasks.upperBound)
            } else {
                k.conv2dBackwardWeightsStride1(x, dy, &dw, nil, scratch + 1, batch, g, tasks.lowerBound, tasks.upperBound)
            }
            let guards = Array(UnsafeBufferPointer(start: scratch + 1 + layout.scratchFloats, count: guardFloats))
            XCTAssertEqual(guards, [Float](repeating: 12345, count: guardFloats), "scratch overrun, \(g)")
        }
        return Gradients(dw: dw, db: db)
    }

    func testLayoutTasksCoverEveryWeightOnce() {
        for g in Self.geometries {
            let layout = Stride1WeightGradientLayout(g)!
            var owners = [Int](repeating: 0, count: g.weightFloats), biasOwners = [Int](repeating: 0, count: g.outChannels)
            for t in 0..<layout.tasks {
                let task = layout.task(t)
                XCTAssertTrue((1...Stride1WeightGradientLayout.maxChannelBlock).contains(task.outChannels))
                XCTAssertTrue((1...Stride1WeightGradientLayout.maxRowBlock).contains(task.kernelRows))
                for r in 0..<task.outChannels {
                    for row in 0..<task.kernelRows { owners[(task.outChannel + r) * g.patchSize + task.patchIndex + row * g.kernelWidth] += 1 }
                    if task.ownsBias { biasOwners[task.outChannel + r] += 1 }
                }
            }
            XCTAssertEqual(owners, [Int](repeating: 1, count: owners.count), "\(g)")
            XCTAssertEqual(biasOwners, [Int](repeating: 1, count: biasOwners.count), "\(g)")
        }
        let strided = Tests.conv(c: 1, h: 8, w: 8, out: 2, k: (3, 3), s: (2, 1), pad: (0, 0), d: (1, 1), groups: 1)
        XCTAssertNil(Stride1WeightGradientLayout(strided), "stride 2 is the unfolding kernel's")
    }

    func testMatchesReferenceOnOddShapes() {
        var random = TestRandom(seed: 41)
        for (index, g) in Self.geometries.enumerated() {
            // Longer than one pass of this geometry, and not a multiple of it.
            let batch = Stride1WeightGradientLayout(g)!.samplesPerPass + 3
            let x = random.floats(batch * g.inputFloats), w = random.floats(g.weightFloats), dy = random.floats(batch * g.outputFloats)
            let expected = referenceConv2dGradients(x.map(Double.init), w.map(Double.init), dy.map(Double.init), g, batch: batch)
            for k in runnableKernelSets() {
                let result = runStride1(k, g, batch: batch, x: x, dy: dy, parts: 1)
                assertClose(result.dw, expected.dw, relative: 1e-5, absolute: 1e-4, "geometry \(index) \(k.isa) weight gradient")
                assertClose(result.db, expected.db, relative: 1e-5, absolute: 1e-4, "geometry \(index) \(k.isa) bias gradient")
                let withoutBias = runStride1(k, g, batch: batch, x: x, dy: dy, parts: 2, bias: false)
                XCTAssertEqual(bitPatterns(withoutBias.dw), bitPatterns(result.dw), "geometry \(index) without a bias")
                XCTAssertTrue(withoutBias.db.allSatisfy(\.isNaN), "no bias gradient written")
            }
        }
    }

    /// The kernel's dw against central differences of the twin's forward: L = sum(conv(x, w) * r).
    func testWeightGradientMatchesFiniteDifferences() {
        var random = TestRandom(seed: 43)
        for g in Self.geometries {
            let batch = 2
            let x = random.floats(batch * g.inputFloats).map(Double.init), w = random.floats(g.weightFloats).map(Double.init)
            let r = random.floats(batch * g.outputFloats)
            let loss = { (w: [Double]) in zip(referenceConv2d(x, w, nil, g, batch: batch), r).reduce(0) { $0 + $1.0 * Double($1.1) } }
            let kernel = runStride1(runnableKernelSets()[0], g, batch: batch, x: x.map(Float.init), dy: r, parts: 1)
            // L is linear in w, so a forward difference is as exact as a central one, at one reference
            // convolution per probe.
            let h = 1e-4, base = loss(w)
            for i in stride(from: 0, to: w.count, by: max(1, w.count / 29)) {
                var plus = w
                plus[i] += h
                let numeric = (loss(plus) - base) / h
                XCTAssertEqual(Double(kernel.dw[i]), numeric, accuracy: 1e-3 * max(1, abs(numeric)), "dw[\(i)] of \(g)")
            }
        }
    }

    func testBitsDoNotDependOnSplitOrKernelSet() {
        var random = TestRandom(seed: 47)
        for g in Self.geometries {
            let batch = 2 * Stride1WeightGradientLayout(g)!.samplesPerPass + 1
            let x = random.floats(batch * g.inputFloats), dy = random.floats(batch * g.outputFloats)
            let sets = runnableKernelSets()
            let reference = runStride1(sets[0], g, batch: batch, x: x, dy: dy, parts: 1)
            for k in sets {
                for parts in [1, 2, 3, 7] {
                    let result = runStride1(k, g, batch: batch, x: x, dy: dy, parts: parts)
                    XCTAssertEqual(bitPatterns(result.dw), bitPatterns(reference.dw), "\(k.isa) \(parts) parts, \(g)")
                    XCTAssertEqual(bitPatterns(result.db), bitPatterns(reference.db), "\(k.isa) \(parts) parts, \(g)")
                }
            }
        }
    }
}
