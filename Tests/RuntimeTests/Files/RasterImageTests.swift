import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

final class RasterImageTests: XCTestCase {
    private func gray(_ width: Int, _ height: Int, _ pixels: [UInt8]) throws -> RasterImage {
        try RasterImage(width: width, height: height, format: .gray, pixels: pixels)
    }

    func testInitializerRejectsWrongPixelCount() {
        XCTAssertThrowsError(try RasterImage(width: 2, height: 2, format: .rgb, pixels: [0, 0, 0]))
        XCTAssertThrowsError(try RasterImage(width: -1, height: 2, format: .gray, pixels: []))
        XCTAssertThrowsError(try RasterImage(width: Int.max, height: 2, format: .gray, pixels: []))
    }

    func testHalvingAveragesEachTwoByTwoBlock() throws {
        let image = try gray(4, 2, [0, 100, 10, 20, 200, 100, 30, 40])
        let half = resizeGray(image, width: 2, height: 1)
        XCTAssertEqual(half.pixels, [100, 25])
    }

    func testNonIntegerShrinkWeighsPartialPixels() throws {
        // 3 -> 2: output 0 covers input 0 fully and half of input 1: (0 * 1 + 90 * 0.5) / 1.5 = 30.
        let image = try gray(3, 1, [0, 90, 180])
        XCTAssertEqual(resizeGray(image, width: 2, height: 1).pixels, [30, 150])
    }

    func testConstantImageStaysConstantAtAnySize() throws {
        let image = try gray(37, 23, [UInt8](repeating: 173, count: 37 * 23))
        for (w, h) in [(28, 28), (5, 40), (100, 3), (1, 1)] {
            let resized = resizeGray(image, width: w, height: h)
            XCTAssertEqual(resized.width, w)
            XCTAssertEqual(resized.height, h)
            XCTAssertTrue(resized.pixels.allSatisfy { $0 == 173 }, "\(w)x\(h)")
        }
    }

    func testShrinkingKeepsTheMeanIntensity() throws {
        var generator = SystemRandomNumberGenerator()
        let pixels = (0..<(84 * 84)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let image = try gray(84, 84, pixels)
        let small = resizeGray(image, width: 28, height: 28)
        let mean = { (p: [UInt8]) in Double(p.reduce(0) { $0 + Int($1) }) / Double(p.count) }
        XCTAssertEqual(mean(small.pixels), mean(pixels), accuracy: 0.6)
        // Each output is exactly the rounded mean of its 3x3 block.
        let block = (0..<3).flatMap { dy in (0..<3).map { dx in Int(pixels[(3 + dy) * 84 + 6 + dx]) } }
        XCTAssertEqual(Int(small.sample(x: 2, y: 1)), Int((Double(block.reduce(0, +)) / 9).rounded()))
    }

    func testEnlargingInterpolatesBetweenPixelCentres() throws {
        let image = try gray(2, 1, [0, 255])
        XCTAssertEqual(resizeGray(image, width: 4, height: 1).pixels, [0, 64, 191, 255])
    }

    func testResizeOfColourUsesLuma() throws {
        let image = try RasterImage(width: 1, height: 1, format: .rgb, pixels: [0, 255, 0])
        XCTAssertEqual(resizeGray(image, width: 2, height: 2).pixels, [150, 150, 150, 150])
    }

    func testEmptyOrNegativeSizesDoNotCrash() throws {
        let empty = try gray(0, 0, [])
        XCTAssertEqual(resizeGray(empty, width: 2, height: 2).pixels, [0, 0, 0, 0])
        XCTAssertEqual(resizeGray(try gray(1, 1, [9]), width: -3, height: 5).pixels, [])
    }

    func testDarkDigitOnLightPaperIsInvertedToMNISTStyle() throws {
        // A black 2x2 stroke in the middle of white paper.
        var pixels = [UInt8](repeating: 255, count: 8 * 8)
        for y in 3..<5 { for x in 3..<5 { pixels[y * 8 + x] = 0 } }
        let input = modelInputImage(from: try gray(8, 8, pixels), width: 4, height: 4)
        XCTAssertEqual(input.sample(x: 0, y: 0), 0)
        XCTAssertEqual(input.sample(x: 1, y: 1), 64)  // a quarter of the 2x2 block is stroke: 255 / 4
        XCTAssertEqual(input.sample(x: 1, y: 2), 64)
    }

    func testLightDigitOnDarkBackgroundIsKept() throws {
        var pixels = [UInt8](repeating: 0, count: 4 * 4)
        pixels[5] = 255
        let image = try gray(4, 4, pixels)
        XCTAssertEqual(modelInputImage(from: image, width: 4, height: 4).pixels, pixels)
        XCTAssertEqual(modelInputImage(from: image, width: 4, height: 4, inversion: .always).pixels, pixels.map { 255 - $0 })
        let light = image.inverted()
        XCTAssertEqual(modelInputImage(from: light, width: 4, height: 4, inversion: .never).pixels, light.pixels)
    }

    func testBorderMeanLooksOnlyAtTheOutermostRing() throws {
        var pixels = [UInt8](repeating: 200, count: 5 * 5)
        for y in 1..<4 { for x in 1..<4 { pixels[y * 5 + x] = 0 } }
        XCTAssertEqual(try gray(5, 5, pixels).borderMean(), 200)
    }
}
