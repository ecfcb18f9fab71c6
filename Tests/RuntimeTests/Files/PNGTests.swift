import Foundation
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

final class PNGTests: XCTestCase {
    private let path = "picture.png"

    private func gradient(width: Int, height: Int, channels: Int) -> [UInt8] {
        (0..<(width * height * channels)).map { UInt8(truncatingIfNeeded: $0 * 7 + $0 / 5) }
    }

    private func decodeError(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> PNGError? {
        do {
            _ = try decodePNG(bytes: bytes, path: path, as: .gray)
            XCTFail("expected a PNGError", file: file, line: line)
            return nil
        } catch let error as PNGError {
            XCTAssertEqual(error.path, path, file: file, line: line)
            return error
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
            return nil
        }
    }

    // MARK: Encoding, checked with an independent decoder

    func testEncodedGrayPNGDecodesWithPythonToTheSamePixels() throws {
        let pixels = gradient(width: 13, height: 7, channels: 1)
        let target = try makeTemporaryDirectory(self, "mlpc-files") + "/gray.png"
        try writePNG(width: 13, height: 7, channels: 1, pixels: pixels, to: target)
        let decoded = try FileFixtures.decodeWithPython(target)
        XCTAssertEqual([decoded.width, decoded.height, decoded.channels], [13, 7, 1])
        XCTAssertEqual(decoded.pixels, pixels)
    }

    func testEncodedRGBPNGDecodesWithPythonToTheSamePixels() throws {
        let pixels = gradient(width: 5, height: 9, channels: 3)
        let target = try makeTemporaryDirectory(self, "mlpc-files") + "/rgb.png"
        try writePNG(width: 5, height: 9, channels: 3, pixels: pixels, to: target)
        let decoded = try FileFixtures.decodeWithPython(target)
        XCTAssertEqual([decoded.width, decoded.height, decoded.channels], [5, 9, 3])
        XCTAssertEqual(decoded.pixels, pixels)
    }

    func testEncodingRejectsMismatchedPixelsAndChannels() {
        XCTAssertThrowsError(try encodePNG(width: 2, height: 2, channels: 1, pixels: [1, 2, 3]))
        XCTAssertThrowsError(try encodePNG(width: 2, height: 2, channels: 4, pixels: [UInt8](repeating: 0, count: 16)))
        XCTAssertThrowsError(try encodePNG(width: 0, height: 2, channels: 1, pixels: []))
        XCTAssertThrowsError(try encodePNG(width: -1, height: -1, channels: 1, pixels: [0]))
    }

    // MARK: Decoding

    func testOwnEncoderRoundTripsThroughTheDecoder() throws {
        let gray = gradient(width: 11, height: 6, channels: 1)
        let decodedGray = try decodePNG(bytes: encodePNG(width: 11, height: 6, channels: 1, pixels: gray), path: path, as: .gray)
        XCTAssertEqual(decodedGray.pixels, gray)
        let rgb = gradient(width: 4, height: 3, channels: 3)
        let decodedRGB = try decodePNG(bytes: encodePNG(width: 4, height: 3, channels: 3, pixels: rgb), path: path, as: .rgb)
        XCTAssertEqual(decodedRGB.pixels, rgb)
        XCTAssertEqual([decodedRGB.width, decodedRGB.height], [4, 3])
    }

    /// Noise does not compress: the stream spans several 64 KiB IDAT chunks, which the decoder joins.
    func testLargeNoisyImageRoundTripsThroughManyIDATChunks() throws {
        var state: UInt64 = 0x1234_5678
        let (width, height) = (400, 300)
        let pixels = (0..<(width * height * 3)).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        let png = try encodePNG(width: width, height: height, channels: 3, pixels: pixels)
        XCTAssertGreaterThan(png.count, 5 * 65536)
        let decoded = try decodePNG(bytes: png, path: path, as: .rgb)
        XCTAssertEqual(decoded.width, width)
        XCTAssertEqual(decoded.height, height)
        XCTAssertEqual(decoded.pixels, pixels)
    }

    func testColourBecomesBT601LumaWhenGrayIsAsked() throws {
        let rgb: [UInt8] = [255, 0, 0, 0, 255, 0, 0, 0, 255, 90, 90, 90]
        let png = FileFixtures.handMadePNG(width: 4, height: 1, bitDepth: 8, colorType: 2, rows: [rgb])
        let image = try decodePNG(bytes: png, path: path, as: .gray)
        XCTAssertEqual(image.pixels, [76, 150, 29, 90])
    }

    func testGrayBecomesEqualChannelsWhenRGBIsAsked() throws {
        let png = FileFixtures.handMadePNG(width: 2, height: 1, bitDepth: 8, colorType: 0, rows: [[10, 200]])
        XCTAssertEqual(try decodePNG(bytes: png, path: path, as: .rgb).pixels, [10, 10, 10, 200, 200, 200])
    }

    func testPaletteImageIsExpanded() throws {
        let palette = FileFixtures.pngChunk("PLTE", [0, 0, 0, 255, 255, 255, 200, 100, 50])
        let png = FileFixtures.handMadePNG(width: 3, height: 1, bitDepth: 8, colorType: 3, rows: [[2, 1, 0]], extraChunks: [palette])
        XCTAssertEqual(try decodePNG(bytes: png, path: path, as: .rgb).pixels, [200, 100, 50, 255, 255, 255, 0, 0, 0])
    }

    func testSixteenBitGrayIsReducedToEightBits() throws {
        let png = FileFixtures.handMadePNG(width: 3, height: 1, bitDepth: 16, colorType: 0, rows: [[0xFF, 0xFF, 0x00, 0x00, 0x80, 0x80]])
        XCTAssertEqual(try decodePNG(bytes: png, path: path, as: .gray).pixels, [255, 0, 128])
    }

    func testTransparencyIsCompositedOnWhite() throws {
        // Gray+alpha: opaque black, fully transparent black, half-transparent black.
        let png = FileFixtures.handMadePNG(width: 3, height: 1, bitDepth: 8, colorType: 4, rows: [[0, 255, 0, 0, 0, 128]])
        let image = try decodePNG(bytes: png, path: path, as: .gray)
        XCTAssertEqual(image.pixels[0], 0)
        XCTAssertEqual(image.pixels[1], 255)
        XCTAssertEqual(Int(image.pixels[2]), 127, accuracy: 1)
    }

    func testRGBAIsCompositedOnWhite() throws {
        let png = FileFixtures.handMadePNG(width: 2, height: 1, bitDepth: 8, colorType: 6, rows: [[255, 0, 0, 255, 0, 0, 255, 0]])
        XCTAssertEqual(try decodePNG(bytes: png, path: path, as: .rgb).pixels, [255, 0, 0, 255, 255, 255])
    }

    func testReadPNGFromDisk() throws {
        let target = try makeTemporaryDirectory(self, "mlpc-files") + "/disk.png"
        try writePNG(width: 2, height: 2, channels: 1, pixels: [0, 64, 128, 255], to: target)
        XCTAssertEqual(try readPNG(path: target, as: .gray).pixels, [0, 64, 128, 255])
        XCTAssertThrowsError(try readPNG(path: target + ".missing", as: .gray)) { error in
            XCTAssertTrue(String(describing: error).contains(".missing"))
        }
    }

    // MARK: Corrupt input

    func testNotAPNG() {
        XCTAssertEqual(decodeError([])?.offset, 0)
        XCTAssertEqual(decodeError(Array("GIF89a not a png".utf8))?.offset, 0)
    }

    func testEveryTruncationIsAnErrorNotACrash() throws {
        let png = try encodePNG(width: 6, height: 5, channels: 3, pixels: gradient(width: 6, height: 5, channels: 3))
        for length in 0..<png.count {
            XCTAssertNotNil(decodeError(Array(png[0..<length])), "prefix of \(length) bytes")
        }
    }

    func testChunkCRCMismatchNamesTheOffset() throws {
        var png = try encodePNG(width: 2, height: 2, channels: 1, pixels: [1, 2, 3, 4])
        png[20] ^= 0xFF  // inside IHDR data (width/height)
        let error = decodeError(png)
        XCTAssertEqual(error?.offset, 8 + 8 + 13)  // the IHDR CRC
        XCTAssertTrue(error?.reason.contains("CRC") ?? false)
    }

    func testFirstChunkMustBeIHDR() {
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        png += FileFixtures.pngChunk("IDAT", FileFixtures.storedZlib([0, 0])) + FileFixtures.pngChunk("IEND", [])
        XCTAssertEqual(decodeError(png)?.offset, 8)
    }

    func testForgedHugeSizeIsRejectedBeforeAllocating() {
        let png = FileFixtures.handMadePNG(width: 100_000, height: 100_000, bitDepth: 8, colorType: 0, rows: [[0]])
        let error = decodeError(png)
        XCTAssertEqual(error?.offset, 16)
        XCTAssertTrue(error?.reason.contains("pixels") ?? false)
    }

    func testImageDataThatIsNotZlibIsAnError() {
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        png += FileFixtures.pngChunk("IHDR", FileFixtures.bigEndian32(4) + FileFixtures.bigEndian32(4) + [8, 0, 0, 0, 0])
        png += FileFixtures.pngChunk("IDAT", [1, 2, 3, 4, 5, 6, 7, 8]) + FileFixtures.pngChunk("IEND", [])
        let error = decodeError(png)
        XCTAssertTrue(error?.reason.contains("libpng") ?? false, "\(String(describing: error))")
    }

    func testTooLittleImageDataIsAnError() {
        // A 4x4 gray image whose (valid) zlib stream holds only two of its four rows.
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        png += FileFixtures.pngChunk("IHDR", FileFixtures.bigEndian32(4) + FileFixtures.bigEndian32(4) + [8, 0, 0, 0, 0])
        png += FileFixtures.pngChunk("IDAT", FileFixtures.storedZlib([UInt8](repeating: 0, count: 10))) + FileFixtures.pngChunk("IEND", [])
        XCTAssertNotNil(decodeError(png))
    }

    func testInvalidBitDepthIsAnError() {
        let png = FileFixtures.handMadePNG(width: 1, height: 1, bitDepth: 7, colorType: 0, rows: [[0]])
        XCTAssertNotNil(decodeError(png))
    }

    func testRandomDamageNeverCrashes() throws {
        let png = try encodePNG(width: 9, height: 9, channels: 3, pixels: gradient(width: 9, height: 9, channels: 3))
        for _ in 0..<1000 {
            var damaged = png
            for _ in 0..<Int.random(in: 1...4) {
                damaged[Int.random(in: 8..<damaged.count)] = UInt8.random(in: 0...255)
            }
            _ = try? decodePNG(bytes: damaged, path: path, as: .rgb)
        }
        // Damage behind valid CRCs reaches libpng itself: rewrite the IDAT payload and fix its CRC.
        let idatStart = 8 + 25
        let idatLength = Int(png[idatStart]) << 24 | Int(png[idatStart + 1]) << 16 | Int(png[idatStart + 2]) << 8 | Int(png[idatStart + 3])
        for _ in 0..<500 {
            var payload = Array(png[(idatStart + 8)..<(idatStart + 8 + idatLength)])
            payload[Int.random(in: 0..<payload.count)] = UInt8.random(in: 0...255)
            let rebuilt = Array(png[0..<idatStart]) + FileFixtures.pngChunk("IDAT", payload) + FileFixtures.pngChunk("IEND", [])
            _ = try? decodePNG(bytes: rebuilt, path: path, as: .gray)
        }
    }
}
