import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

final class CanvasTests: XCTestCase {
    private func litPixels(_ canvas: Canvas, color: Color) -> Set<[Int]> {
        var result = Set<[Int]>()
        for y in 0..<canvas.height {
            for x in 0..<canvas.width where canvas.pixel(x: x, y: y) == color { result.insert([x, y]) }
        }
        return result
    }

    func testFillRectIsClippedToTheCanvas() {
        var canvas = Canvas(width: 4, height: 3)
        canvas.fillRect(x: -2, y: 1, width: 4, height: 10, color: .red)
        XCTAssertEqual(litPixels(canvas, color: .red), [[0, 1], [1, 1], [0, 2], [1, 2]])
        canvas.fillRect(x: Int.max - 1, y: Int.min, width: Int.max, height: Int.max, color: .blue)
        XCTAssertEqual(litPixels(canvas, color: .blue), [])
    }

    func testBresenhamLineHitsBothEndsAndOnePixelPerColumn() {
        var canvas = Canvas(width: 10, height: 5)
        canvas.drawLine(x0: 0, y0: 0, x1: 9, y1: 3, color: .black)
        let lit = litPixels(canvas, color: .black)
        XCTAssertTrue(lit.contains([0, 0]))
        XCTAssertTrue(lit.contains([9, 3]))
        XCTAssertEqual(lit.count, 10)
        XCTAssertEqual(Set(lit.map { $0[0] }).count, 10)
    }

    func testSteepAndReversedLinesAreTheSame() {
        var forward = Canvas(width: 5, height: 9)
        var backward = Canvas(width: 5, height: 9)
        forward.drawLine(x0: 1, y0: 0, x1: 3, y1: 8, color: .black)
        backward.drawLine(x0: 3, y0: 8, x1: 1, y1: 0, color: .black)
        XCTAssertEqual(litPixels(forward, color: .black).count, 9)
        XCTAssertEqual(litPixels(backward, color: .black).count, 9)
    }

    func testLinesOffTheCanvasDoNotCrash() {
        var canvas = Canvas(width: 5, height: 5)
        canvas.drawLine(x0: -20, y0: -3, x1: 30, y1: 8, color: .black, thickness: 3)
        canvas.drawLine(x0: Int.min, y0: 0, x1: Int.max, y1: 0, color: .black)
        XCTAssertFalse(litPixels(canvas, color: .black).isEmpty)
    }

    func testTextPixelsFollowTheGlyphs() {
        var canvas = Canvas(width: 40, height: 20)
        canvas.drawText("7A", x: 3, y: 2, scale: 2, color: .black)
        for (index, character) in "7A".enumerated() {
            for gy in 0..<BitmapFont.glyphHeight {
                for gx in 0..<BitmapFont.glyphWidth {
                    let x = 3 + index * 12 + gx * 2 + 1, y = 2 + gy * 2 + 1
                    let expected: Color = BitmapFont.isSet(character, x: gx, y: gy) ? .black : .white
                    XCTAssertEqual(canvas.pixel(x: x, y: y), expected, "\(character) \(gx),\(gy)")
                }
            }
        }
    }

    func testRotatedTextReadsBottomToTop() {
        // "1" turned counter-clockwise: its top row becomes the left column, its left column the bottom row.
        var canvas = Canvas(width: 20, height: 20)
        canvas.drawTextRotated("1", x: 2, y: 3)
        let length = BitmapFont.width(of: "1")
        for gy in 0..<BitmapFont.glyphHeight {
            for gx in 0..<BitmapFont.glyphWidth {
                let expected: Color = BitmapFont.isSet("1", x: gx, y: gy) ? .black : .white
                XCTAssertEqual(canvas.pixel(x: 2 + gy, y: 3 + length - 1 - gx), expected, "\(gx),\(gy)")
            }
        }
    }

    func testImageIsScaledAndColourMapped() throws {
        var canvas = Canvas(width: 8, height: 8, background: .red)
        let image = try RasterImage(width: 2, height: 1, format: .gray, pixels: [0, 255])
        canvas.drawImage(image, x: 1, y: 2, scale: 3)
        XCTAssertEqual(canvas.pixel(x: 1, y: 2), .black)
        XCTAssertEqual(canvas.pixel(x: 3, y: 4), .black)
        XCTAssertEqual(canvas.pixel(x: 4, y: 2), .white)
        XCTAssertEqual(canvas.pixel(x: 6, y: 4), .white)
        XCTAssertEqual(canvas.pixel(x: 7, y: 4), .red)
        XCTAssertEqual(canvas.pixel(x: 1, y: 5), .red)
    }

    func testBluesColourMapRunsFromNearWhiteToDarkBlue() {
        XCTAssertEqual(ColorMap.blues.color(for: 0), Color(247, 251, 255))
        XCTAssertEqual(ColorMap.blues.color(for: 255), Color(8, 48, 107))
        XCTAssertGreaterThan(ColorMap.blues.color(for: 100).luma, ColorMap.blues.color(for: 200).luma)
    }

    func testCanvasPNGDecodesWithPythonToTheSamePixels() throws {
        var canvas = Canvas(width: 17, height: 11)
        canvas.drawText("ok", x: 1, y: 1, color: .blue)
        canvas.fillRect(x: 12, y: 5, width: 4, height: 4, color: .red)
        let target = try makeTemporaryDirectory(self, "mlpc-files") + "/canvas.png"
        try canvas.writePNG(to: target)
        let decoded = try FileFixtures.decodeWithPython(target)
        XCTAssertEqual([decoded.width, decoded.height, decoded.channels], [17, 11, 3])
        XCTAssertEqual(decoded.pixels, canvas.pixels)
    }

    func testEmptyCanvasCannotBeEncoded() {
        XCTAssertThrowsError(try Canvas(width: 0, height: -5).pngBytes())
    }
}
