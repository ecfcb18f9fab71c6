import Foundation
import XCTest

/// `mlpc run` with data that is missing or damaged: a non-zero exit naming the file (and the byte
/// offset of the damage) before any training starts, and no run directory.
final class DataFaultTests: XCTestCase {
    struct Fixture {
        var specPath: String
        var dataDirectory: String
        var outDirectory: String
    }

    func fixture() throws -> Fixture {
        let folder = try makeTemporaryDirectory(self, "mlpc-data-fault")
        try TinyDataset.write(to: folder + "/data")
        try writeFile(folder + "/tiny.yaml", TinyDataset.spec())
        return Fixture(specPath: folder + "/tiny.yaml", dataDirectory: folder + "/data", outDirectory: folder + "/run")
    }

    func run(_ fixture: Fixture) throws -> CommandResult {
        let result = try MLPCProcess.run(
            ["run", fixture.specPath, "--data-dir", fixture.dataDirectory, "--epochs", "1", "--out", fixture.outDirectory])
        assertNoCrash(result)
        return result
    }

    /// Exit 1, the message names `path` and `place`, and training never started.
    func assertRefusedBeforeTraining(
        _ result: CommandResult, _ fixture: Fixture, path: String, place: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(result.status, 1, result.stderr, file: file, line: line)
        XCTAssertTrue(result.stderr.contains("\(path): \(place)"), "expected '\(path): \(place)' in: \(result.stderr)", file: file, line: line)
        XCTAssertFalse(result.stdout.contains("Epoch ["), result.stdout, file: file, line: line)
        XCTAssertFalse(result.stdout.contains("training tiny"), result.stdout, file: file, line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.outDirectory + "/run.json"), file: file, line: line)
    }

    func testMissingDataOfflineListsEachFileAndWhereToPutIt() throws {
        let folder = try makeTemporaryDirectory(self, "mlpc-offline")
        try writeFile(folder + "/tiny.yaml", TinyDataset.spec())
        let empty = folder + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let result = try MLPCProcess.run(
            ["run", folder + "/tiny.yaml", "--data-dir", empty, "--epochs", "1", "--out", folder + "/run"],
            environment: ["MLPC_MNIST_MIRRORS": "http://127.0.0.1:1/"], timeout: 30)
        assertNoCrash(result)
        XCTAssertNotEqual(result.status, 0)
        for name in [TinyDataset.trainImages, TinyDataset.trainLabels, TinyDataset.testImages, TinyDataset.testLabels] {
            XCTAssertTrue(result.stderr.contains("\(name): put \(name).gz"), "no line for \(name): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("at \(empty)/\(name).gz"), "no destination for \(name): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("http://127.0.0.1:1/\(name).gz"), "no mirror attempt for \(name): \(result.stderr)")
        }
        XCTAssertFalse(result.stdout.contains("Epoch ["))
    }

    func testTruncatedImagesFileIsRefusedWithItsLength() throws {
        let fixture = try fixture()
        let path = fixture.dataDirectory + "/" + TinyDataset.trainImages
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: path))
        try writeFile(path, bytes: Array(bytes.prefix(100)))
        assertRefusedBeforeTraining(try run(fixture), fixture, path: path, place: "byte 100: truncated data")
    }

    func testWrongMagicNumberIsRefusedAtByteZero() throws {
        let fixture = try fixture()
        let path = fixture.dataDirectory + "/" + TinyDataset.testImages
        var bytes = try XCTUnwrap(FileManager.default.contents(atPath: path).map(Array.init))
        bytes[0] = 0x07
        try writeFile(path, bytes: bytes)
        assertRefusedBeforeTraining(try run(fixture), fixture, path: path, place: "byte 0: wrong magic number 0x07000803")
    }

    func testLabelOutOfRangeIsRefusedAtItsByte() throws {
        let fixture = try fixture()
        let path = fixture.dataDirectory + "/" + TinyDataset.trainLabels
        var bytes = try XCTUnwrap(FileManager.default.contents(atPath: path).map(Array.init))
        bytes[8 + 5] = 9  // example 5, after the 8-byte header
        try writeFile(path, bytes: bytes)
        assertRefusedBeforeTraining(try run(fixture), fixture, path: path, place: "byte 13: label 9 of example 5 is out of range")
    }

    func testCorruptGzipIsRefusedAtItsCompressedByte() throws {
        let fixture = try fixture()
        let plain = fixture.dataDirectory + "/" + TinyDataset.trainImages
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: plain).map(Array.init))
        try FileManager.default.removeItem(atPath: plain)
        var gzip = FuzzInputChecks.storedGzip(bytes)
        // Byte 10 starts the first deflate block: type 3 does not exist.
        gzip[10] = 0x07
        try writeFile(plain + ".gz", bytes: gzip)
        let result = try run(fixture)
        assertRefusedBeforeTraining(result, fixture, path: plain + ".gz", place: "compressed byte ")
        XCTAssertTrue(result.stderr.contains("corrupt gzip stream"), result.stderr)
    }

    func testGzipWithAWrongChecksumIsRefused() throws {
        let fixture = try fixture()
        let plain = fixture.dataDirectory + "/" + TinyDataset.testLabels
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: plain).map(Array.init))
        try FileManager.default.removeItem(atPath: plain)
        var gzip = FuzzInputChecks.storedGzip(bytes)
        gzip[gzip.count - 8] ^= 0xFF  // the CRC-32 of the trailer
        try writeFile(plain + ".gz", bytes: gzip)
        assertRefusedBeforeTraining(try run(fixture), fixture, path: plain + ".gz", place: "compressed byte ")
    }

    func testIntactGzipDataTrains() throws {
        let fixture = try fixture()
        for name in [TinyDataset.trainImages, TinyDataset.trainLabels, TinyDataset.testImages, TinyDataset.testLabels] {
            let plain = fixture.dataDirectory + "/" + name
            let bytes = try XCTUnwrap(FileManager.default.contents(atPath: plain).map(Array.init))
            try FileManager.default.removeItem(atPath: plain)
            try writeFile(plain + ".gz", bytes: FuzzInputChecks.storedGzip(bytes))
        }
        let result = try run(fixture)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("Accuracy: "), result.stdout)
    }
}
