import CZlib
import Foundation
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

/// The encoder writes every row with filter type 2 (up); these tests read the scanlines back with zlib
/// and undo the filter by hand, independently of libpng and of the encoder's own code.
final class PNGFilterTests: XCTestCase {
    /// The concatenated IDAT payload of a PNG, inflated.
    private func scanlines(_ png: [UInt8], expectedBytes: Int) throws -> [UInt8] {
        var position = 8
        var idat: [UInt8] = []
        while position + 12 <= png.count {
            let length = png[position..<(position + 4)].reduce(0) { $0 << 8 | Int($1) }
            let kind = String(decoding: png[(position + 4)..<(position + 8)], as: UTF8.self)
            if kind == "IDAT" { idat += png[(position + 8)..<(position + 8 + length)] }
            position += 12 + length
        }
        var out = [UInt8](repeating: 0, count: expectedBytes + 1)
        var outLength = uLongf(out.count)
        let status = uncompress(&out, &outLength, idat, uLong(idat.count))
        XCTAssertEqual(status, Z_OK)
        XCTAssertEqual(Int(outLength), expectedBytes, "the inflated scanlines have the wrong length")
        return Array(out[0..<Int(outLength)])
    }

    func testEveryRowIsUpFilteredAndUnfiltersToThePixels() throws {
        // Rows that repeat in pairs (as scaled-up digits do), then a ramp that wraps around 255, in RGB.
        let width = 37, height = 9, channels = 3
        var pixels = [UInt8](repeating: 0, count: width * height * channels)
        for y in 0..<height {
            for x in 0..<(width * channels) {
                pixels[y * width * channels + x] = y < 4 ? UInt8(truncatingIfNeeded: (y / 2) * 91 + x * 7) : UInt8(truncatingIfNeeded: 250 + y * 3 + x)
            }
        }
        let rowBytes = width * channels
        let png = try encodePNG(width: width, height: height, channels: channels, pixels: pixels)
        let lines = try scanlines(png, expectedBytes: height * (rowBytes + 1))
        var above = [UInt8](repeating: 0, count: rowBytes)
        var decoded: [UInt8] = []
        for y in 0..<height {
            let line = lines[(y * (rowBytes + 1))..<((y + 1) * (rowBytes + 1))]
            XCTAssertEqual(line.first, 2, "row \(y) has filter type \(line.first.map(String.init) ?? "none")")
            let row = zip(line.dropFirst(), above).map { $0 &+ $1 }
            decoded += row
            above = row
        }
        XCTAssertEqual(decoded, pixels)
        // The repeated rows filter to zeros.
        XCTAssertTrue(lines[(1 * (rowBytes + 1) + 1)..<(2 * (rowBytes + 1))].allSatisfy { $0 == 0 })
    }

    func testAGrayImageOfOneRowKeepsItsBytes() throws {
        let pixels: [UInt8] = [0, 1, 128, 255, 7]
        let png = try encodePNG(width: 5, height: 1, channels: 1, pixels: pixels)
        XCTAssertEqual(try scanlines(png, expectedBytes: 6), [2] + pixels)
    }
}
