import Foundation
import KernelInterface
import Planner
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

final class BatchGatheringTests: XCTestCase {
    /// PyTorch's ToTensor + Normalize, in float32 as torch computes it: ((x / 255) - mean) / std.
    private func pytorchNormalize(_ x: UInt8, mean: Float, std: Float) -> Float {
        ((Float(x) / 255) - mean) / std
    }

    func testNormalizationStaysWithinFourUlpsOfPyTorchForEveryPixelValue() {
        for (mean, std) in [(Float(0.1307), Float(0.3081)), (0.5, 0.5), (0, 1), (0.485, 0.229), (0.9, 0.05)] {
            let normalization = PixelNormalization(mean: mean, standardDeviation: std)
            for value in 0...255 {
                let x = UInt8(value)
                let ours = Float(x) * normalization.scale + normalization.shift
                let torch = pytorchNormalize(x, mean: mean, std: std)
                let tolerance = 4 * max(abs(torch), abs(normalization.shift)).ulp
                XCTAssertLessThanOrEqual(abs(ours - torch), tolerance, "x=\(x) mean=\(mean) std=\(std): \(ours) vs \(torch)")
            }
        }
    }

    func testNormalizationIsCloseToTheExactValue() {
        let mean: Float = 0.1307, std: Float = 0.3081
        let normalization = PixelNormalization(mean: mean, standardDeviation: std)
        for value in 0...255 {
            let exact = (Double(value) / 255 - Double(mean)) / Double(std)
            let ours = Double(Float(value) * normalization.scale + normalization.shift)
            XCTAssertEqual(ours, exact, accuracy: 3 * Double(Float(max(abs(exact), 0.5)).ulp), "x=\(value)")
        }
    }

    /// Runs a kernel set's gather of every index, split into `parts` run one after the other, into
    /// outputs that start as NaN and -1, so anything left unwritten shows.
    private func gathered(
        _ kernels: KernelSet, _ examples: (images: [UInt8], labels: [UInt8]), featureCount: Int, indices: [Int32],
        normalization: PixelNormalization, parts: Int = 1
    ) -> (values: [Float], labels: [Int32]) {
        var out = [Float](repeating: .nan, count: indices.count * featureCount)
        var labelsOut = [Int32](repeating: -1, count: indices.count)
        for part in 0..<parts {
            kernels.gatherRows(
                examples.images, examples.labels.map { Int32($0) }, featureCount, indices, indices.count, normalization.scale, normalization.shift,
                &out, &labelsOut, part, parts)
        }
        return (out, labelsOut)
    }

    /// `count` examples of random bytes, labelled 0..<classes in turn.
    private func randomExamples(_ count: Int, featureCount: Int, classes: Int, _ random: inout TestRandom) -> (images: [UInt8], labels: [UInt8]) {
        ((0..<(count * featureCount)).map { _ in UInt8(truncatingIfNeeded: random.next()) }, (0..<count).map { UInt8($0 % classes) })
    }

    func testGatherCopiesTheIndexedRowsNormalizedWithTheSameBitsInEveryKernelSet() {
        var random = TestRandom(seed: 11)
        let normalization = PixelNormalization(mean: 0.1307, standardDeviation: 0.3081)
        // Widths below, at and above a vector, with ragged ends, and MNIST's 784.
        for featureCount in [1, 5, 16, 37, 784] {
            let examples = randomExamples(9, featureCount: featureCount, classes: 10, &random)
            let indices: [Int32] = [8, 0, 3, 3, 7]
            for kernels in runnableKernelSets() {
                let (out, labelsOut) = gathered(kernels, examples, featureCount: featureCount, indices: indices, normalization: normalization)
                for (row, index) in indices.enumerated() {
                    XCTAssertEqual(labelsOut[row], Int32(examples.labels[Int(index)]), "\(kernels.isa) row \(row)")
                    for feature in 0..<featureCount {
                        let x = examples.images[Int(index) * featureCount + feature]
                        // A product, then a sum: two roundings, as documented.
                        let product = Float(x) * normalization.scale
                        let expected = product + normalization.shift
                        let actual = out[row * featureCount + feature]
                        XCTAssertEqual(actual.bitPattern, expected.bitPattern, "\(kernels.isa) width \(featureCount) row \(row) feature \(feature)")
                        XCTAssertEqual(actual, pytorchNormalize(x, mean: 0.1307, std: 0.3081), accuracy: 4 * Float(4).ulp)
                    }
                }
            }
        }
    }

    func testGatherWritesOnlyCountRows() {
        let images = [UInt8](repeating: 255, count: 12)
        let labels: [Int32] = [4, 5, 6]
        let indices: [Int32] = [1, 2, 0]
        for kernels in runnableKernelSets() {
            var out = [Float](repeating: -7, count: 12)
            var labelsOut = [Int32](repeating: -1, count: 3)
            let unit = PixelNormalization.unitRange
            kernels.gatherRows(images, labels, 4, indices, 2, unit.scale, unit.shift, &out, &labelsOut, 0, 1)
            XCTAssertEqual(out, [Float](repeating: 1, count: 8) + [Float](repeating: -7, count: 4), "\(kernels.isa)")
            XCTAssertEqual(labelsOut, [5, 6, -1], "\(kernels.isa)")
        }
    }

    func testGatherSplitIntoPartsWritesTheSameBitsAsOnePart() {
        var random = TestRandom(seed: 12)
        let examples = randomExamples(40, featureCount: 50, classes: 7, &random)
        let indices = (0..<23).map { _ in Int32(random.int(below: 40)) }
        let normalization = PixelNormalization(mean: 0.5, standardDeviation: 0.25)
        for kernels in runnableKernelSets() {
            let whole = gathered(kernels, examples, featureCount: 50, indices: indices, normalization: normalization)
            for parts in [2, 3, 7, 23, 30] {
                let split = gathered(kernels, examples, featureCount: 50, indices: indices, normalization: normalization, parts: parts)
                XCTAssertEqual(bitPatterns(split.values), bitPatterns(whole.values), "\(kernels.isa), \(parts) parts")
                XCTAssertEqual(split.labels, whole.labels, "\(kernels.isa), \(parts) parts")
            }
        }
    }

    func testUnitRangeDividesBy255() {
        let n = PixelNormalization.unitRange
        XCTAssertEqual(Float(255) * n.scale + n.shift, 1, accuracy: Float(1).ulp)
        XCTAssertEqual(Float(0) * n.scale + n.shift, 0)
    }
}
