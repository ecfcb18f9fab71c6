import Foundation
import XCTest

@testable import Runtime

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

    func testGatherCopiesTheIndexedRowsNormalized() {
        let featureCount = 5
        let images: [UInt8] = (0..<(4 * featureCount)).map { UInt8($0 * 12) }
        let indices: [Int32] = [2, 0, 2]
        let normalization = PixelNormalization(mean: 0.5, standardDeviation: 0.25)
        var out = [Float](repeating: .nan, count: indices.count * featureCount)
        gatherBatch(images: images, featureCount: featureCount, indices: indices, count: indices.count,
                    scale: normalization.scale, shift: normalization.shift, out: &out)
        for (row, index) in indices.enumerated() {
            for feature in 0..<featureCount {
                let x = images[Int(index) * featureCount + feature]
                XCTAssertEqual(out[row * featureCount + feature], pytorchNormalize(x, mean: 0.5, std: 0.25),
                               accuracy: 4 * Float(2).ulp, "row \(row) feature \(feature)")
            }
        }
    }

    func testGatherWritesOnlyCountRows() {
        let images = [UInt8](repeating: 255, count: 12)
        let indices: [Int32] = [1, 2, 0]
        var out = [Float](repeating: -7, count: 12)
        gatherBatch(images: images, featureCount: 4, indices: indices, count: 2, scale: 1, shift: 0, out: &out)
        XCTAssertEqual(out, [Float](repeating: 255, count: 8) + [Float](repeating: -7, count: 4))
    }

    func testUnitRangeDividesBy255() {
        let n = PixelNormalization.unitRange
        XCTAssertEqual(Float(255) * n.scale + n.shift, 1, accuracy: Float(1).ulp)
        XCTAssertEqual(Float(0) * n.scale + n.shift, 0)
    }

    func testGatherLabelsFollowsTheIndices() {
        let labels: [UInt8] = [3, 1, 4, 1, 5, 9]
        let indices: [Int32] = [5, 0, 2, 2]
        var out = [Int32](repeating: -1, count: 4)
        gatherLabels(labels: labels, indices: indices, count: 4, out: &out)
        XCTAssertEqual(out, [9, 3, 4, 4])
    }
}
