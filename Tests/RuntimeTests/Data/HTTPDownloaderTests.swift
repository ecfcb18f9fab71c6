import Foundation
import TestSupport
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

/// HTTPDownloader on libcurl (opened with dlopen): what each kind of failure says.
final class HTTPDownloaderTests: XCTestCase {
    private var scratch = ""
    private var servers: [LocalHTTPServer] = []
    private var listeners: [Int32] = []

    override func setUpWithError() throws {
        scratch = try DataFixtures.makeScratchDirectory(name)
    }

    override func tearDownWithError() throws {
        for server in servers { server.stop() }
        servers.removeAll()
        for descriptor in listeners { close(descriptor) }
        listeners.removeAll()
        try? FileManager.default.removeItem(atPath: scratch)
    }

    /// Serves a folder holding `files` (name to bytes); returns the base URL.
    private func serve(_ files: [String: [UInt8]]) throws -> String {
        let root = "\(scratch)/served"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for (name, bytes) in files { try DataFixtures.write(bytes, to: "\(root)/\(name)") }
        let server = try LocalHTTPServer(serving: root)
        servers.append(server)
        return server.baseURL
    }

    /// The message of the DownloadFailure that fetching `url` throws.
    private func failure(of url: String, with downloader: HTTPDownloader, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            let body = try downloader.fetch(url)
            XCTFail("expected a download failure, got \(body.count) bytes", file: file, line: line)
        } catch let error as DownloadFailure {
            return error.message
        } catch {
            XCTFail("expected a DownloadFailure, got \(error)", file: file, line: line)
        }
        return ""
    }

    private func bytes(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) } }

    func testBodyIsReturnedByteForByte() throws {
        let content = bytes(70_000)
        let base = try serve(["data.bin": content])
        XCTAssertEqual(try HTTPDownloader(timeout: 10).fetch(base + "data.bin"), content)
    }

    func testMissingFileGivesTheStatusWithItsReasonPhrase() throws {
        let base = try serve([:])
        XCTAssertEqual(failure(of: base + "absent.gz", with: HTTPDownloader(timeout: 10)), "HTTP 404 Not Found")
    }

    func testBodyOverTheCapIsRefused() throws {
        let base = try serve(["big.bin": bytes(5_000)])
        XCTAssertEqual(
            failure(of: base + "big.bin", with: HTTPDownloader(timeout: 10, maximumBodySize: 4_999)),
            "response larger than 4999 bytes")
    }

    func testBodyExactlyAtTheCapIsAccepted() throws {
        let content = bytes(5_000)
        let base = try serve(["exact.bin": content])
        XCTAssertEqual(try HTTPDownloader(timeout: 10, maximumBodySize: 5_000).fetch(base + "exact.bin"), content)
    }

    func testClosedPortSaysConnectionRefused() throws {
        let url = "http://127.0.0.1:\(try DataFixtures.unusedPort())/file.gz"
        XCTAssertEqual(failure(of: url, with: HTTPDownloader(timeout: 5)), "connection refused")
    }

    func testServerThatNeverAnswersTimesOutAfterTheIdleTimeout() throws {
        let port = try listenWithoutAnswering()
        let start = Date()
        XCTAssertEqual(failure(of: "http://127.0.0.1:\(port)/file.gz", with: HTTPDownloader(timeout: 1)), "timed out")
        XCTAssertLessThan(Date().timeIntervalSince(start), 8)
    }

    func testOnlyHTTPAndHTTPSURLsAreFetched() {
        let downloader = HTTPDownloader(timeout: 5)
        XCTAssertEqual(failure(of: "file:///etc/hostname", with: downloader), "not an http(s) URL")
        XCTAssertEqual(failure(of: "ftp://127.0.0.1/mnist.gz", with: downloader), "not an http(s) URL")
    }

    func testMissingLibcurlNamesTheLibraryAndWhereToPutTheFiles() throws {
        let downloader = HTTPDownloader(timeout: 5, libraryNames: ["libmlpc-absent-curl.so.4"])
        do {
            _ = try downloader.fetch("http://127.0.0.1:1/file.gz")
            XCTFail("expected LibcurlUnavailable")
        } catch let error as LibcurlUnavailable {
            XCTAssertEqual(error.libraryName, "libmlpc-absent-curl.so.4")
            XCTAssertTrue(error.reason.contains("libmlpc-absent-curl.so.4"), error.reason)
            let advice = error.advice(directory: "/data/mnist")
            XCTAssertTrue(advice.hasPrefix("cannot download: libcurl (libmlpc-absent-curl.so.4) is not installed"), advice)
            XCTAssertTrue(advice.hasSuffix("install it or put the MNIST files in /data/mnist"), advice)
        }
    }

    func testReasonPhrasesForCommonAndUnlistedStatuses() {
        XCTAssertEqual(HTTPDownloader.reasonPhrase(403), "Forbidden")
        XCTAssertEqual(HTTPDownloader.reasonPhrase(503), "Service Unavailable")
        XCTAssertEqual(HTTPDownloader.reasonPhrase(418), "Client Error")
        XCTAssertEqual(HTTPDownloader.reasonPhrase(599), "Server Error")
        XCTAssertEqual(HTTPDownloader.reasonPhrase(999), "Unknown Status")
    }

    /// A TCP socket on 127.0.0.1 that is listening (so connecting succeeds) but never accepts or
    /// answers; closed in tearDown. Returns its port.
    private func listenWithoutAnswering() throws -> Int {
        let (descriptor, port) = try DataFixtures.boundLoopbackSocket()
        listeners.append(descriptor)
        guard listen(descriptor, 4) == 0 else { throw CocoaError(.fileWriteUnknown) }
        return port
    }
}
