import Foundation
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

final class IDXFileTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = try DataFixtures.makeScratchDirectory(name)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func writeFile(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = "\(directory)/\(name)"
        try DataFixtures.write(bytes, to: path)
        return path
    }

    // MARK: Reading good files

    func testReadsUncompressedFileDimensionsAndData() throws {
        let pixels = DataFixtures.images(count: 4, rows: 2, columns: 3)
        let path = try writeFile("images-idx3-ubyte", DataFixtures.idx([4, 2, 3], pixels))
        let file = try IDXFile.read(path: path)
        XCTAssertEqual(file.dimensions, [4, 2, 3])
        XCTAssertEqual(file.data, pixels)
        XCTAssertFalse(file.header.isCompressed)
        XCTAssertEqual(file.header.headerLength, 16)
    }

    func testReadsGzipFileToTheSameDataAsTheUncompressedOne() throws {
        let bytes = DataFixtures.idx([4, 2, 3], DataFixtures.images(count: 4, rows: 2, columns: 3))
        let plain = try IDXFile.read(path: try writeFile("a-idx3-ubyte", bytes))
        let compressed = try IDXFile.read(path: try writeFile("a-idx3-ubyte.gz", DataFixtures.gzip(bytes)))
        XCTAssertTrue(compressed.header.isCompressed)
        XCTAssertEqual(compressed.dimensions, plain.dimensions)
        XCTAssertEqual(compressed.data, plain.data)
    }

    func testDigestIsTheSHA256OfTheWholeDecompressedFile() throws {
        let bytes = DataFixtures.idx([3], [0, 1, 2])
        let file = try IDXFile.read(path: try writeFile("l-idx1-ubyte.gz", DataFixtures.gzip(bytes)))
        XCTAssertEqual(file.sha256, SHA256.hash(bytes))
    }

    func testDigestOfDataSpanningManyHashPiecesMatchesTheWholeFileDigest() throws {
        // 700 KB: the reader hashes in 256 KiB pieces as it inflates; the digest must be the one of
        // the whole file, computed here in one call by the portable path.
        var generator = SplitMix64(state: 3)
        let pixels = (0..<(700 * 1000)).map { _ in UInt8(truncatingIfNeeded: generator.next() >> 60) }
        let bytes = DataFixtures.idx([700, 1000], pixels)
        var reference = try XCTUnwrap(SHA256(implementation: .portable))
        reference.update(bytes)
        let expected = reference.finalize()
        let compressed = try IDXFile.read(path: try writeFile("h-idx2-ubyte.gz", DataFixtures.gzip(bytes)))
        let plain = try IDXFile.read(path: try writeFile("h-idx2-ubyte", bytes))
        XCTAssertEqual(compressed.sha256, expected)
        XCTAssertEqual(plain.sha256, expected)
    }

    func testReadsConcatenatedGzipMembers() throws {
        let bytes = DataFixtures.idx([2, 50], DataFixtures.images(count: 2, rows: 5, columns: 10))
        let split = 37
        let members = DataFixtures.gzip(Array(bytes[..<split])) + DataFixtures.gzip(Array(bytes[split...]))
        let file = try IDXFile.read(path: try writeFile("m-idx2-ubyte.gz", members))
        XCTAssertEqual(file.data, Array(bytes[12...]))
    }

    func testReadsDataLargerThanOneInputBuffer() throws {
        // 300 KB of poorly compressible data: several 64 KiB reads of compressed input.
        var generator = SplitMix64(state: 7)
        let pixels = (0..<(300 * 1000)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let bytes = DataFixtures.idx([300, 1000], pixels)
        let file = try IDXFile.read(path: try writeFile("big-idx2-ubyte.gz", DataFixtures.gzip(bytes, level: 1)))
        XCTAssertEqual(file.data, pixels)
    }

    // MARK: Header problems

    func testTruncatedHeaderIsReportedWithTheOffsetWhereTheFileEnds() throws {
        let path = try writeFile("t-idx3-ubyte", [0, 0, 8, 3, 0, 0, 0, 4, 0, 0])
        let error = DataFixtures.expectIDXError(.truncatedHeader) { _ = try IDXFile.read(path: path) }
        XCTAssertEqual(error?.position, .file(10))
        XCTAssertTrue(error?.description.hasPrefix("\(path): byte 10:") ?? false, error?.description ?? "")
    }

    func testFileShorterThanTheMagicNumberIsATruncatedHeader() throws {
        let path = try writeFile("short-idx1-ubyte", [0, 0])
        let error = DataFixtures.expectIDXError(.truncatedHeader) { _ = try IDXFile.read(path: path) }
        XCTAssertEqual(error?.position, .file(2))
    }

    func testWrongMagicIsReportedAtByteZero() throws {
        let path = try writeFile("w-idx1-ubyte", [0x12, 0x34, 8, 1, 0, 0, 0, 1, 5])
        let error = DataFixtures.expectIDXError(.wrongMagic) { _ = try IDXFile.read(path: path) }
        XCTAssertEqual(error?.position, .file(0))
        XCTAssertTrue(error?.description.contains("0x12340801") ?? false, error?.description ?? "")
    }

    func testGzipDataInAFileWithoutGzSuffixGetsAHint() throws {
        let path = try writeFile("g-idx1-ubyte", DataFixtures.gzip(DataFixtures.idx([1], [5])))
        let error = DataFixtures.expectIDXError(.wrongMagic) { _ = try IDXFile.read(path: path) }
        XCTAssertTrue(error?.reason.contains(".gz") ?? false, error?.reason ?? "")
    }

    func testNonUInt8ElementTypeIsRefusedByName() throws {
        let path = try writeFile("f-idx1-ubyte", DataFixtures.idx([1], [0, 0, 0, 0], typeCode: 0x0D))
        let error = DataFixtures.expectIDXError(.unsupportedElementType) { _ = try IDXFile.read(path: path) }
        XCTAssertEqual(error?.position, .file(2))
        XCTAssertTrue(error?.reason.contains("float32") ?? false, error?.reason ?? "")
    }

    func testUnknownElementTypeIsAWrongMagic() throws {
        let path = try writeFile("u-idx1-ubyte", DataFixtures.idx([1], [0], typeCode: 0x42))
        DataFixtures.expectIDXError(.wrongMagic) { _ = try IDXFile.read(path: path) }
    }

    func testZeroDimensionIsReportedAtItsOffset() throws {
        let path = try writeFile("z-idx3-ubyte", DataFixtures.idx([4, 0, 3], []))
        let error = DataFixtures.expectIDXError(.zeroDimension) { _ = try IDXFile.read(path: path) }
        XCTAssertEqual(error?.position, .file(8))
    }

    func testRankZeroIsRefused() throws {
        let path = try writeFile("r-idx0-ubyte", [0, 0, 8, 0])
        DataFixtures.expectIDXError(.zeroDimension) { _ = try IDXFile.read(path: path) }
    }

    // MARK: Size problems

    func testDataShorterThanTheDimensionsSayIsTruncated() throws {
        let path = try writeFile("s-idx3-ubyte", DataFixtures.idx([4, 2, 3], [UInt8](repeating: 1, count: 20)))
        let error = DataFixtures.expectIDXError(.truncatedData) { _ = try IDXFile.read(path: path) }
        XCTAssertEqual(error?.position, .file(36))
        XCTAssertTrue(error?.reason.contains("4x2x3") ?? false, error?.reason ?? "")
    }

    func testTrailingBytesAfterTheDataAreAnError() throws {
        let path = try writeFile("x-idx3-ubyte", DataFixtures.idx([4, 2, 3], [UInt8](repeating: 1, count: 27)))
        let error = DataFixtures.expectIDXError(.trailingBytes) { _ = try IDXFile.read(path: path) }
        XCTAssertEqual(error?.position, .file(40))
        XCTAssertTrue(error?.reason.hasPrefix("3 trailing bytes") ?? false, error?.reason ?? "")
    }

    func testGzipDataShorterThanTheDimensionsSayIsTruncatedAtADecompressedOffset() throws {
        let bytes = DataFixtures.idx([4, 2, 3], [UInt8](repeating: 1, count: 20))
        let path = try writeFile("s-idx3-ubyte.gz", DataFixtures.gzip(bytes))
        let error = DataFixtures.expectIDXError(.truncatedData) { _ = try IDXFile.read(path: path) }
        XCTAssertEqual(error?.position, .decompressed(36))
        XCTAssertTrue(error?.description.contains("byte 36 of the decompressed data") ?? false, error?.description ?? "")
    }

    func testGzipTrailingBytesAreCounted() throws {
        let bytes = DataFixtures.idx([4, 2, 3], [UInt8](repeating: 1, count: 29))
        let path = try writeFile("x-idx3-ubyte.gz", DataFixtures.gzip(bytes))
        let error = DataFixtures.expectIDXError(.trailingBytes) { _ = try IDXFile.read(path: path) }
        XCTAssertEqual(error?.position, .decompressed(40))
        XCTAssertTrue(error?.reason.hasPrefix("5 trailing bytes") ?? false, error?.reason ?? "")
    }

    func testHugeDimensionsInASmallGzipFileAreRefusedBeforeAllocating() throws {
        // 60000 x 65535 x 65535 bytes would be 257 TB: refused from the header alone.
        let path = try writeFile("h-idx3-ubyte.gz", DataFixtures.gzip(DataFixtures.idx([60000, 65535, 65535], [1, 2, 3])))
        DataFixtures.expectIDXError(.tooLarge) { _ = try IDXFile.read(path: path) }
    }

    func testDimensionsBeyondWhatTheGzipFileCanHoldAreRefused() throws {
        // 10 MB claimed by a gzip file of a few dozen bytes: more than deflate can expand to.
        let path = try writeFile("c-idx1-ubyte.gz", DataFixtures.gzip(DataFixtures.idx([10_000_000], [1, 2, 3])))
        let error = DataFixtures.expectIDXError(.truncatedData) { _ = try IDXFile.read(path: path) }
        XCTAssertTrue(error?.reason.contains("holds at most") ?? false, error?.reason ?? "")
    }

    func testDimensionsWhoseProductOverflowsAreRefused() throws {
        let path = try writeFile("o-idx3-ubyte", DataFixtures.idx([0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], []))
        DataFixtures.expectIDXError(.tooLarge) { _ = try IDXFile.read(path: path) }
    }

    func testHugeDimensionsInAShortUncompressedFileAreTruncationNotAnAllocation() throws {
        let path = try writeFile("big-idx2-ubyte", DataFixtures.idx([40000, 40000], [1, 2]))
        let error = DataFixtures.expectIDXError(.truncatedData) { _ = try IDXFile.read(path: path) }
        XCTAssertEqual(error?.position, .file(14))
    }

    // MARK: Damaged gzip streams

    func testCorruptGzipIsReportedWithACompressedOffset() throws {
        var gz = DataFixtures.gzip(DataFixtures.idx([64, 64], DataFixtures.images(count: 64, rows: 8, columns: 8)))
        // Damage the deflate data after the 10-byte gzip header.
        for index in 12..<min(gz.count - 8, 40) { gz[index] ^= 0xA5 }
        let path = try writeFile("c-idx2-ubyte.gz", gz)
        let error = DataFixtures.expectIDXError(.corruptCompression) { _ = try IDXFile.read(path: path) }
        guard case .compressed(let offset) = error?.position else {
            return XCTFail("expected a compressed offset, got \(String(describing: error?.position))")
        }
        XCTAssertGreaterThanOrEqual(offset, 10)
        XCTAssertLessThanOrEqual(offset, gz.count)
        XCTAssertTrue(error?.description.hasPrefix("\(path): compressed byte \(offset):") ?? false, error?.description ?? "")
    }

    func testDamagedGzipChecksumIsDetected() throws {
        var gz = DataFixtures.gzip(DataFixtures.idx([3], [1, 2, 3]))
        gz[gz.count - 8] ^= 0xFF  // the CRC-32 in the gzip trailer
        let path = try writeFile("crc-idx1-ubyte.gz", gz)
        let error = DataFixtures.expectIDXError(.corruptCompression) { _ = try IDXFile.read(path: path) }
        XCTAssertTrue(error?.reason.contains("incorrect data check") ?? false, error?.reason ?? "")
    }

    func testTruncatedGzipIsReportedAtTheEndOfTheCompressedData() throws {
        let gz = DataFixtures.gzip(DataFixtures.idx([64, 64], DataFixtures.images(count: 64, rows: 8, columns: 8)))
        let cut = Array(gz[..<(gz.count / 2)])
        let path = try writeFile("t-idx2-ubyte.gz", cut)
        let error = DataFixtures.expectIDXError(.truncatedCompression) { _ = try IDXFile.read(path: path) }
        XCTAssertEqual(error?.position, .compressed(cut.count))
    }

    func testGzipMissingOnlyItsTrailerIsTruncated() throws {
        let gz = DataFixtures.gzip(DataFixtures.idx([3], [1, 2, 3]))
        let path = try writeFile("n-idx1-ubyte.gz", Array(gz.dropLast(4)))
        DataFixtures.expectIDXError(.truncatedCompression) { _ = try IDXFile.read(path: path) }
    }

    func testEmptyGzipFileIsTruncated() throws {
        let path = try writeFile("e-idx1-ubyte.gz", [])
        let error = DataFixtures.expectIDXError(.truncatedCompression) { _ = try IDXFile.read(path: path) }
        XCTAssertEqual(error?.position, .compressed(0))
    }

    func testGarbageAfterTheGzipStreamIsAnError() throws {
        let gz = DataFixtures.gzip(DataFixtures.idx([3], [1, 2, 3])) + Array("junk after the end".utf8)
        let path = try writeFile("j-idx1-ubyte.gz", gz)
        DataFixtures.expectIDXError(.corruptCompression) { _ = try IDXFile.read(path: path) }
    }

    func testMissingFileIsUnreadable() {
        let error = DataFixtures.expectIDXError(.unreadable) { _ = try IDXFile.read(path: "\(directory)/nothing-here") }
        XCTAssertTrue(error?.description.contains("nothing-here") ?? false)
    }

    // MARK: Header probe

    func testHeaderProbeOfAGzipFileReadsDimensionsOnly() throws {
        // A gzip file whose data part is cut off: the header probe still succeeds, full reading does not.
        let gz = DataFixtures.gzip(DataFixtures.idx([200, 20, 20], DataFixtures.images(count: 200, rows: 20, columns: 20)), level: 0)
        let path = try writeFile("p-idx3-ubyte.gz", Array(gz[..<(gz.count / 2)]))
        let header = try IDXHeader.read(path: path)
        XCTAssertEqual(header.dimensions, [200, 20, 20])
        XCTAssertTrue(header.isCompressed)
        XCTAssertEqual(header.dataLength, 80_000)
        DataFixtures.expectIDXError(.truncatedCompression) { _ = try IDXFile.read(path: path) }
    }

    func testHeaderProbeOfAnUncompressedFileChecksItsLength() throws {
        let path = try writeFile("p-idx1-ubyte", DataFixtures.idx([5], [1, 2, 3]))
        let error = DataFixtures.expectIDXError(.truncatedData) { _ = try IDXHeader.read(path: path) }
        XCTAssertEqual(error?.position, .file(11))
    }

    func testHeaderProbeReportsWrongMagic() throws {
        let path = try writeFile("p-idx1-ubyte.gz", DataFixtures.gzip([1, 0, 8, 1, 0, 0, 0, 1, 7]))
        let error = DataFixtures.expectIDXError(.wrongMagic) { _ = try IDXHeader.read(path: path) }
        XCTAssertEqual(error?.position, .decompressed(0))
    }
}
