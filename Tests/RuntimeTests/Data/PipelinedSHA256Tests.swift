import Foundation
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

#if canImport(Glibc)
import Glibc
#endif

/// The train images are hashed on another thread while they are inflated. The digest must be the one
/// hashing in place gives, whoever ends up hashing, and no thread may wait forever.
final class PipelinedSHA256Tests: XCTestCase {
    let prefix: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 9]
    let data: [UInt8] = (0..<(3 << 20) + 123).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
    var expected: SHA256Digest { SHA256.hash(prefix + data) }

    /// Publishes `data` in uneven pieces, pausing now and then so the hasher catches up and waits.
    func produce(_ pipeline: PipelinedSHA256, into buffer: UnsafeMutableRawPointer) {
        pipeline.begin(prefix: prefix, data: UnsafeRawPointer(buffer))
        var written = 0
        var piece = 1
        while written < data.count {
            let count = min(piece * 4093, data.count - written)
            data.withUnsafeBytes { (buffer + written).copyMemory(from: $0.baseAddress! + written, byteCount: count) }
            written += count
            pipeline.publish(written)
            if piece % 7 == 0 { usleep(200) }
            piece += 1
        }
        pipeline.close()
    }

    func testDigestHashedOnAnotherThreadIsTheDigestInPlace() {
        for _ in 0..<5 {
            let pipeline = PipelinedSHA256()
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: data.count, alignment: 64)
            defer { buffer.deallocate() }
            let (digest, _) = runConcurrently(
                { () -> SHA256Digest in
                    self.produce(pipeline, into: buffer)
                    return pipeline.waitForDigest()
                },
                { pipeline.hashUntilClosed() })
            XCTAssertEqual(digest, expected)
        }
    }

    func testTheReaderHashesItselfWhenNoOtherThreadComes() {
        let pipeline = PipelinedSHA256()
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: data.count, alignment: 64)
        defer { buffer.deallocate() }
        produce(pipeline, into: buffer)
        XCTAssertEqual(pipeline.waitForDigest(), expected)
        // A hashing thread that arrives late finds the work done and returns.
        pipeline.hashUntilClosed()
        XCTAssertEqual(pipeline.waitForDigest(), expected)
    }

    func testAReaderThatFailsBeforeTheDataReleasesTheHashingThread() {
        let pipeline = PipelinedSHA256()
        let (_, _) = runConcurrently(
            { () -> Bool in
                usleep(2000)  // the hashing thread is already waiting for bytes
                pipeline.close()
                return true
            },
            { pipeline.hashUntilClosed() })
        XCTAssertEqual(pipeline.waitForDigest(), SHA256.hash([]))
    }

    func testAFileReadThroughThePipelineHasTheDigestOfAnOrdinaryRead() throws {
        let directory = try DataFixtures.makeScratchDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/train-images-idx3-ubyte.gz"
        try DataFixtures.write(DataFixtures.gzip(DataFixtures.idx([300, 28, 28], DataFixtures.images(count: 300, rows: 28, columns: 28))), to: path)
        let ordinary = try IDXFile.read(path: path)
        let pipeline = PipelinedSHA256()
        let (piped, _) = runConcurrently({ Result { try IDXFile.read(path: path, hashedBy: pipeline) } }, { pipeline.hashUntilClosed() })
        let file = try piped.get()
        XCTAssertEqual(file.sha256, ordinary.sha256)
        XCTAssertEqual(file.data, ordinary.data)
    }

    func testACutOffFileReadThroughThePipelineFailsAsAnOrdinaryRead() throws {
        let directory = try DataFixtures.makeScratchDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/train-images-idx3-ubyte.gz"
        let whole = DataFixtures.gzip(DataFixtures.idx([300, 28, 28], DataFixtures.images(count: 300, rows: 28, columns: 28)))
        try DataFixtures.write(Array(whole.prefix(whole.count / 2)), to: path)
        var ordinary: Error? = nil
        XCTAssertThrowsError(try IDXFile.read(path: path)) { ordinary = $0 }
        let pipeline = PipelinedSHA256()
        let (piped, _) = runConcurrently({ Result { try IDXFile.read(path: path, hashedBy: pipeline) } }, { pipeline.hashUntilClosed() })
        XCTAssertThrowsError(try piped.get()) { error in XCTAssertEqual("\(error)", ordinary.map { "\($0)" }) }
    }
}
