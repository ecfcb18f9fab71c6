import Foundation
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

/// Text and paths that come from outside: names escaped for messages, paths that are not regular
/// files, palette PNGs whose pixels point past their palette, flat input shapes as pictures, and
/// model-file formats.
final class UntrustedInputTests: XCTestCase {
    // MARK: escapedForMessage

    func testControlCharactersBecomeVisibleEscapes() {
        XCTAssertEqual(escapedForMessage("\u{1B}[2J\u{1B}[31mfc1.bias"), "\\u{1B}[2J\\u{1B}[31mfc1.bias")
        XCTAssertEqual(escapedForMessage("a\u{0}b\u{7F}c\u{85}d"), "a\\u{0}b\\u{7F}c\\u{85}d")
        XCTAssertEqual(escapedForMessage("tab\there\nnew\rreturn"), "tab\\there\\nnew\\rreturn")
    }

    func testQuotesAndBackslashAreEscapedSoAQuotedNameCannotEndEarly() {
        XCTAssertEqual(escapedForMessage(#"a'b"c\d"#), #"a\'b\"c\\d"#)
    }

    func testTextReorderingAndInvisibleCharactersAreEscaped() {
        XCTAssertEqual(escapedForMessage("fc1\u{202E}thgiew"), "fc1\\u{202E}thgiew")
        XCTAssertEqual(escapedForMessage("\u{FEFF}x\u{200B}"), "\\u{FEFF}x\\u{200B}")
    }

    func testPrintableTextIncludingNonASCIIIsKept() {
        for text in ["fc1.weight", "poids_é", "重み", "emoji 🙂", "/work/specs/mnist_mlp.yaml"] {
            XCTAssertEqual(escapedForMessage(text), text)
        }
    }

    func testSafetensorsErrorsEscapeTheTensorName() throws {
        let name = "\u{1B}[31mevil"
        var bytes = try SafetensorsFile(tensors: [SafetensorsTensor(name: name, shape: [1], values: [1])]).serialized()
        // Make the dtype unreadable so the parser reports the tensor by name.
        let header = String(decoding: bytes[8...], as: UTF8.self).replacingOccurrences(of: "\"F32\"", with: "\"F64\"")
        bytes = Array(bytes[0..<8]) + Array(header.utf8)
        XCTAssertThrowsError(try SafetensorsFile.parse(bytes: bytes, path: "x.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("tensor '\\u{1B}[31mevil'"), "\(error)")
            XCTAssertFalse("\(error)".contains("\u{1B}"), "\(error)")
        }
    }

    // MARK: readRegularFile

    func testReadRegularFileReadsAFile() throws {
        let path = try makeTemporaryDirectory(self, "mlpc-regular") + "/bytes"
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try readRegularFile(path: path, what: "a test file"), [1, 2, 3])
    }

    func testReadRegularFileNamesAMissingPathAndADirectory() throws {
        let directory = try makeTemporaryDirectory(self, "mlpc-regular")
        XCTAssertThrowsError(try readRegularFile(path: directory + "/none", what: "a model file")) { error in
            XCTAssertEqual(error as? FileAccessError, FileAccessError(path: directory + "/none", reason: "no such file"))
        }
        XCTAssertThrowsError(try readRegularFile(path: directory, what: "a model file")) { error in
            XCTAssertEqual("\(error)", directory + ": is a directory, not a model file")
        }
    }

    func testReadRegularFileRefusesAFIFOAndADeviceWithoutBlocking() throws {
        let fifo = try makeTemporaryDirectory(self, "mlpc-regular") + "/pipe"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        // No writer ever opens the FIFO: a blocking open or read would hang here.
        XCTAssertThrowsError(try readRegularFile(path: fifo, what: "a PNG image")) { error in
            XCTAssertEqual("\(error)", fifo + ": is not a regular file but a FIFO (named pipe), not a PNG image")
        }
        XCTAssertThrowsError(try readRegularFile(path: "/dev/zero", what: "a PNG image")) { error in
            XCTAssertEqual("\(error)", "/dev/zero: is not a regular file but a device, not a PNG image")
        }
    }

    func testReadRegularFileRefusesAFileOverTheLimit() throws {
        let path = try makeTemporaryDirectory(self, "mlpc-regular") + "/big"
        try Data(repeating: 7, count: 100).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try readRegularFile(path: path, what: "a test file", limit: 100).count, 100)
        XCTAssertThrowsError(try readRegularFile(path: path, what: "a test file", limit: 99)) { error in
            XCTAssertTrue(error is FileAccessError, "\(error)")
        }
    }

    func testReadPNGReportsAPathProblemAsAFileAccessError() throws {
        XCTAssertThrowsError(try readPNG(path: "/dev/null", as: .gray)) { error in
            XCTAssertTrue(error is FileAccessError, "\(error)")
        }
    }

    // MARK: palette PNGs

    func palettePNG(indices: [UInt8], paletteColours: Int, bitDepth: UInt8 = 8) -> [UInt8] {
        let palette = FileFixtures.pngChunk("PLTE", (0..<paletteColours).flatMap { [UInt8($0 * 40), 0, 0] })
        return FileFixtures.handMadePNG(
            width: bitDepth == 8 ? indices.count : 8 / Int(bitDepth) * indices.count, height: 1, bitDepth: bitDepth, colorType: 3,
            rows: [indices], extraChunks: [palette])
    }

    func testPaletteIndexPastThePaletteIsRefusedWithThePixel() {
        XCTAssertThrowsError(try decodePNG(bytes: palettePNG(indices: [0, 1, 2], paletteColours: 2), path: "p.png", as: .gray)) { error in
            XCTAssertEqual(
                "\(error)", "p.png: pixel (2, 0) uses palette index 2 but the PLTE chunk holds 2 colours (indices 0...1): the file is corrupt")
        }
    }

    func testPackedPaletteIndexPastThePaletteIsRefused() {
        // 4-bit indices, two per byte: 0x13 is pixel 0 = 1, pixel 1 = 3, with a palette of 3 colours.
        XCTAssertThrowsError(try decodePNG(bytes: palettePNG(indices: [0x13], paletteColours: 3, bitDepth: 4), path: "p.png", as: .gray)) { error in
            XCTAssertTrue("\(error)".contains("pixel (1, 0) uses palette index 3"), "\(error)")
        }
    }

    func testPaletteImageUsingItsLastColourDecodes() throws {
        let image = try decodePNG(bytes: palettePNG(indices: [0, 1, 2], paletteColours: 3), path: "p.png", as: .rgb)
        XCTAssertEqual(image.pixels, [0, 0, 0, 40, 0, 0, 80, 0, 0])
    }

    // MARK: input shapes as pictures

    func testAFlatSquareInputIsASquarePicture() {
        XCTAssertTrue(imageDimensions(of: [784]) == (28, 28))
        XCTAssertTrue(imageDimensions(of: [1, 784]) == (28, 28))
        XCTAssertTrue(imageDimensions(of: [36]) == (6, 6))
    }

    func testAFlatInputThatIsNotASquareIsOneRow() {
        XCTAssertTrue(imageDimensions(of: [35]) == (35, 1))
        XCTAssertTrue(imageDimensions(of: [1]) == (1, 1))
    }

    func testAnImageShapeKeepsItsLastTwoDimensions() {
        XCTAssertTrue(imageDimensions(of: [1, 28, 28]) == (28, 28))
        XCTAssertTrue(imageDimensions(of: [5, 7]) == (7, 5))
    }

    func testSquareSideIsExact() {
        XCTAssertEqual(squareSide(of: 0), 0)
        XCTAssertEqual(squareSide(of: 784), 28)
        XCTAssertNil(squareSide(of: 783))
        XCTAssertEqual(squareSide(of: 3_037_000_499 * 3_037_000_499), 3_037_000_499)
        XCTAssertNil(squareSide(of: Int.max))
        XCTAssertNil(squareSide(of: -4))
    }

    // MARK: model-file formats

    func testAModelFileFormatOrNoFormatIsAccepted() throws {
        XCTAssertNoThrow(try checkModelFormat("mlpc.model", path: "m.safetensors"))
        XCTAssertNoThrow(try checkModelFormat(nil, path: "m.safetensors"))
    }

    func testACheckpointIsRefusedPointingAtTheModelFile() {
        XCTAssertThrowsError(try checkModelFormat("mlpc.checkpoint", path: "run/checkpoint.safetensors")) { error in
            XCTAssertTrue("\(error)".hasPrefix("run/checkpoint.safetensors: is a training checkpoint"), "\(error)")
            XCTAssertTrue("\(error)".contains("use the run's model.safetensors"), "\(error)")
        }
    }

    func testAnotherFormatIsRefusedEscaped() {
        XCTAssertThrowsError(try checkModelFormat("x\u{1B}y", path: "m.safetensors")) { error in
            XCTAssertEqual("\(error)", "m.safetensors: its metadata says format \"x\\u{1B}y\", not \"mlpc.model\": it is not an mlpc model file")
        }
    }

    func testEmbeddedSpecNameNamesTheModelFileAndTheOriginalSpec() {
        XCTAssertEqual(
            embeddedSpecName(modelPath: "run0/model.safetensors", originalSpecPath: "/w/specs/mnist.yaml"),
            "run0/model.safetensors (its embedded spec, from /w/specs/mnist.yaml)")
        XCTAssertEqual(embeddedSpecName(modelPath: "m.safetensors", originalSpecPath: nil), "m.safetensors (its embedded spec)")
        XCTAssertEqual(
            embeddedSpecName(modelPath: "m.safetensors", originalSpecPath: "a\u{1B}.yaml"), "m.safetensors (its embedded spec, from a\\u{1B}.yaml)")
    }

    func testARelativeDataDirectoryOfAnEmbeddedSpecIsResolvedFromTheOriginalSpecFolder() {
        XCTAssertEqual(resolveDataDirectory("../data", relativeTo: "/w/specs/mnist.yaml"), "/w/specs/../data")
        XCTAssertEqual(resolveDataDirectory("/abs/data", relativeTo: "/w/specs/mnist.yaml"), "/abs/data")
        XCTAssertEqual(resolveDataDirectory("data", relativeTo: "mnist.yaml"), "data")
    }
}
