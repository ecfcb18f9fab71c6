import CDeflateLoader
import Foundation
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

/// Large gzip IDX files are inflated whole by libdeflate when the system has it, and by zlib's
/// streaming reader otherwise or whenever the file is anything but one clean gzip member: the bytes,
/// the digest and every error must be the same whichever decoder ran.
final class WholeFileInflationTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = try DataFixtures.makeScratchDirectory(name)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// 1,100 images of 31 x 31 pixels: just over the 1 MiB at which whole-file inflation starts.
    private let dimensions = [1100, 31, 31]

    private var pixels: [UInt8] {
        // Not periodic, so deflate has real work and the stream has many blocks.
        (0..<(1100 * 31 * 31)).map { i in UInt8(truncatingIfNeeded: (i &* 2_654_435_761) >> 13 ^ i >> 7) }
    }

    private func writeFile(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = "\(directory)/\(name)"
        try DataFixtures.write(bytes, to: path)
        return path
    }

    private var expectedDecoder: IDXDecoder { mlpc_libdeflate_available() != 0 ? .libdeflate : .zlib }

    func testDataIsLargeEnoughForWholeFileInflation() {
        XCTAssertGreaterThanOrEqual(pixels.count, IDXFile.wholeFileInflationMinimum)
    }

    func testLargeGzipFileGivesTheSameBytesAndDigestWithEitherDecoder() throws {
        let plain = DataFixtures.idx(dimensions, pixels)
        let path = try writeFile("big-idx3-ubyte.gz", DataFixtures.gzip(plain))
        let whole = try IDXFile.read(path: path, hashedBy: nil)
        let streamed = try IDXFile.read(path: path, hashedBy: nil, wholeFileInflation: false)
        XCTAssertEqual(whole.decoder, expectedDecoder)
        XCTAssertEqual(streamed.decoder, .zlib)
        XCTAssertEqual(whole.dimensions, dimensions)
        XCTAssertEqual(whole.data, pixels)
        XCTAssertEqual(streamed.data, pixels)
        XCTAssertEqual(whole.sha256, SHA256.hash(plain))
        XCTAssertEqual(streamed.sha256, whole.sha256)
    }

    func testWholeFileInflationHashesOnThePipelineThread() throws {
        let plain = DataFixtures.idx(dimensions, pixels)
        let path = try writeFile("piped-idx3-ubyte.gz", DataFixtures.gzip(plain))
        let pipeline = PipelinedSHA256()
        let hasher = Thread { pipeline.hashUntilClosed() }
        hasher.start()
        let file = try IDXFile.read(path: path, hashedBy: pipeline)
        XCTAssertEqual(file.decoder, expectedDecoder)
        XCTAssertEqual(file.data, pixels)
        XCTAssertEqual(file.sha256, SHA256.hash(plain))
    }

    func testSmallGzipFileIsLeftToZlib() throws {
        let small = DataFixtures.images(count: 10, rows: 28, columns: 28)
        let path = try writeFile("small-idx3-ubyte.gz", DataFixtures.gzip(DataFixtures.idx([10, 28, 28], small)))
        let file = try IDXFile.read(path: path, hashedBy: nil)
        XCTAssertEqual(file.decoder, .zlib)
        XCTAssertEqual(file.data, small)
    }

    func testConcatenatedMembersAreReadByZlib() throws {
        let plain = DataFixtures.idx(dimensions, pixels)
        let split = plain.count / 3
        let path = try writeFile("members-idx3-ubyte.gz", DataFixtures.gzip(Array(plain[..<split])) + DataFixtures.gzip(Array(plain[split...])))
        let file = try IDXFile.read(path: path, hashedBy: nil)
        XCTAssertEqual(file.decoder, .zlib)
        XCTAssertEqual(file.data, pixels)
        XCTAssertEqual(file.sha256, SHA256.hash(plain))
    }

    func testAFileThatChangedSizeSinceItWasOpenedIsLeftToZlib() throws {
        let gz = DataFixtures.gzip(DataFixtures.idx(dimensions, pixels))
        let path = try writeFile("changed-idx3-ubyte.gz", gz)
        let reader = try DecompressingReader(path: path, compressed: true)
        let header = try IDXHeader.read(from: reader)
        XCTAssertEqual(IDXFile.inflatedByLibdeflate(reader, header: header), expectedDecoder == .libdeflate ? pixels : nil)
        // The file grows after it was opened, then is cut short.
        try DataFixtures.write(gz + [0], to: path)
        XCTAssertNil(IDXFile.inflatedByLibdeflate(reader, header: header))
        try DataFixtures.write(Array(gz.dropLast(100)), to: path)
        XCTAssertNil(IDXFile.inflatedByLibdeflate(reader, header: header))
    }

    func testStoredBytesAreTheFileAsOnDiskAndLeaveTheStreamWhereItWas() throws {
        let gz = DataFixtures.gzip(DataFixtures.idx(dimensions, pixels))
        let path = try writeFile("stored-idx3-ubyte.gz", gz)
        let reader = try DecompressingReader(path: path, compressed: true)
        let header = try IDXHeader.read(from: reader)
        let stored = try XCTUnwrap(reader.storedBytes())
        defer { stored.deallocate() }
        XCTAssertEqual(Array(stored), gz)
        // The stream goes on after the header as if nothing had been read.
        var data = [UInt8](repeating: 0, count: header.dataLength)
        let got = try data.withUnsafeMutableBytes { try reader.read(into: $0.baseAddress!, count: header.dataLength) }
        XCTAssertEqual(got, header.dataLength)
        XCTAssertEqual(data, pixels)
    }

    // MARK: Damaged large files: zlib reports them, exactly as without libdeflate

    /// Reads `bytes` with and without whole-file inflation and checks that both fail the same way.
    private func assertSameError(_ name: String, _ bytes: [UInt8], _ kind: IDXError.Kind, line: UInt = #line) throws {
        let path = try writeFile(name, bytes)
        let whole = DataFixtures.expectIDXError(kind, line: line) { _ = try IDXFile.read(path: path, hashedBy: nil) }
        let streamed = DataFixtures.expectIDXError(kind, line: line) {
            _ = try IDXFile.read(path: path, hashedBy: nil, wholeFileInflation: false)
        }
        XCTAssertEqual(whole, streamed, line: line)
        XCTAssertTrue(whole?.description.hasPrefix(path) ?? false, whole?.description ?? "", line: line)
    }

    func testCorruptDeflateDataInTheMiddle() throws {
        var gz = DataFixtures.gzip(DataFixtures.idx(dimensions, pixels))
        for index in (gz.count / 2)..<(gz.count / 2 + 64) { gz[index] ^= 0x5A }
        try assertSameError("corrupt-idx3-ubyte.gz", gz, .corruptCompression)
    }

    func testWrongChecksum() throws {
        var gz = DataFixtures.gzip(DataFixtures.idx(dimensions, pixels))
        gz[gz.count - 8] ^= 0xFF
        try assertSameError("crc-idx3-ubyte.gz", gz, .corruptCompression)
    }

    func testCutOffStream() throws {
        let gz = DataFixtures.gzip(DataFixtures.idx(dimensions, pixels))
        try assertSameError("cut-idx3-ubyte.gz", Array(gz[..<(gz.count * 2 / 3)]), .truncatedCompression)
    }

    func testGarbageAfterTheStream() throws {
        let gz = DataFixtures.gzip(DataFixtures.idx(dimensions, pixels)) + Array("not gzip".utf8)
        try assertSameError("junk-idx3-ubyte.gz", gz, .corruptCompression)
    }

    func testFileFarLargerThanItsDataIsNotReadWhole() throws {
        let junk = [UInt8](repeating: 0x55, count: 2 << 20)
        let gz = DataFixtures.gzip(DataFixtures.idx(dimensions, pixels)) + junk
        let path = try writeFile("padded-idx3-ubyte.gz", gz)
        let reader = try DecompressingReader(path: path, compressed: true)
        XCTAssertNil(IDXFile.inflatedByLibdeflate(reader, header: try IDXHeader.read(from: reader)))
        try assertSameError("padded2-idx3-ubyte.gz", gz, .corruptCompression)
    }

    func testDataShorterThanTheHeaderSays() throws {
        let gz = DataFixtures.gzip(DataFixtures.idx([1101, 31, 31], pixels))
        try assertSameError("short-idx3-ubyte.gz", gz, .truncatedData)
    }

    func testDataLongerThanTheHeaderSays() throws {
        let gz = DataFixtures.gzip(DataFixtures.idx([1099, 31, 31], pixels))
        try assertSameError("long-idx3-ubyte.gz", gz, .trailingBytes)
    }
}
