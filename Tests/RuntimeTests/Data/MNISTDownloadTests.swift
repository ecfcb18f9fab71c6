import Foundation
import TestSupport
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

final class MNISTDownloadTests: XCTestCase {
    private var scratch = ""
    private var target = ""
    private var servers: [LocalHTTPServer] = []
    private let layout = IDXDatasetLayout.mnist

    override func setUpWithError() throws {
        scratch = try DataFixtures.makeScratchDirectory(name)
        target = "\(scratch)/dataset/mnist"
    }

    override func tearDownWithError() throws {
        for server in servers { server.stop() }
        servers.removeAll()
        try? FileManager.default.removeItem(atPath: scratch)
    }

    /// A folder served over HTTP holding the tiny dataset's .gz files; returns the base URL and the
    /// decompressed contents by name.
    private func serveDataset(_ folder: String, damage: Set<String> = []) throws -> (url: String, contents: [String: [UInt8]]) {
        let root = "\(scratch)/\(folder)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let contents = try DataFixtures.writeDataset(in: root, compressed: true)
        for name in damage {
            // A valid gzip file with different contents: only the checksum can tell.
            var bytes = contents[name]!
            bytes[bytes.count - 1] ^= 0x01
            try DataFixtures.write(DataFixtures.gzip(bytes), to: "\(root)/\(name).gz")
        }
        let server = try LocalHTTPServer(serving: root)
        servers.append(server)
        return (server.baseURL, contents)
    }

    private func checksums(_ contents: [String: [UInt8]]) -> [String: SHA256Digest] {
        contents.mapValues { SHA256.hash($0) }
    }

    private func filesInTarget() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: target)) ?? []).sorted()
    }

    func testDownloadsMissingFilesIntoANewDirectoryAndTheyLoad() throws {
        let mirror = try serveDataset("mirror")
        var messages: [String] = []
        let written = try ensureMNIST(
            directory: target, mirrors: [mirror.url], checksums: checksums(mirror.contents), timeout: 10) { messages.append($0) }
        XCTAssertEqual(written.sorted(), DatasetFileRole.allCases.map { "\(target)/\(layout.name(of: $0)).gz" }.sorted())
        XCTAssertEqual(filesInTarget(), DatasetFileRole.allCases.map { layout.name(of: $0) + ".gz" }.sorted())
        XCTAssertTrue(messages.contains { $0.contains(mirror.url) }, "\(messages)")
        let dataset = try IDXDataset.load(
            directory: target, classCount: 4, imageShape: [2, 3], verification: .expected(checksums(mirror.contents)))
        XCTAssertEqual(dataset.train.count, 5)
        XCTAssertTrue(dataset.files.allSatisfy(\.verified))
    }

    func testDownloadsOnlyTheFilesThatAreMissing() throws {
        let mirror = try serveDataset("mirror")
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        for name in [layout.trainImages, layout.testImages, layout.testLabels] {
            try DataFixtures.write(mirror.contents[name]!, to: "\(target)/\(name)")
        }
        let written = try ensureMNIST(directory: target, mirrors: [mirror.url], checksums: checksums(mirror.contents), timeout: 10) { _ in }
        XCTAssertEqual(written, ["\(target)/\(layout.trainLabels).gz"])
    }

    func testNothingToDoWhenAllFilesArePresent() throws {
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try DataFixtures.writeDataset(in: target)
        // No mirror is reachable: success shows that none was asked.
        let written = try ensureMNIST(directory: target, mirrors: ["http://127.0.0.1:\(try DataFixtures.unusedPort())/"], timeout: 5) { _ in }
        XCTAssertEqual(written, [])
    }

    func testOfflineListsEveryMissingFileWithItsPathAndEachMirrorsFailure() throws {
        let port = try DataFixtures.unusedPort()
        let mirrors = ["http://127.0.0.1:\(port)/a/", "http://127.0.0.1:\(port)/b/"]
        do {
            try ensureMNIST(directory: target, mirrors: mirrors, timeout: 5) { _ in }
            XCTFail("expected a download error")
        } catch let error as DatasetDownloadError {
            XCTAssertEqual(error.missing.map(\.name), DatasetFileRole.allCases.map { layout.name(of: $0) })
            XCTAssertEqual(error.missing.map(\.destination), DatasetFileRole.allCases.map { "\(target)/\(layout.name(of: $0)).gz" })
            XCTAssertEqual(error.missing[0].attempts.map(\.url), mirrors.map { $0 + layout.trainImages + ".gz" })
            let text = error.description
            for file in error.missing { XCTAssertTrue(text.contains(file.destination), text) }
            XCTAssertTrue(text.contains("connection refused"), text)
        }
        XCTAssertEqual(filesInTarget(), [])
    }

    /// The parents a failed download created for its directory are removed with it; those that were
    /// there before, and any that something else filled meanwhile, stay.
    func testFailedDownloadRemovesTheParentDirectoriesItCreated() throws {
        let port = try DataFixtures.unusedPort()
        let deep = "\(scratch)/made/for/mnist/"
        XCTAssertThrowsError(try ensureMNIST(directory: deep, mirrors: ["http://127.0.0.1:\(port)/"], timeout: 5) { _ in })
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(scratch)/made"), "a failed download left the directories it created")
        XCTAssertTrue(FileManager.default.fileExists(atPath: scratch))

        let relativeBase = try DataFixtures.makeScratchDirectory(name + "-relative")
        defer { try? FileManager.default.removeItem(atPath: relativeBase) }
        let previous = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(relativeBase))
        defer { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
        XCTAssertThrowsError(try ensureMNIST(directory: "rel/data", mirrors: ["http://127.0.0.1:\(port)/"], timeout: 5) { _ in })
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: relativeBase), [])
    }

    /// Without libcurl every mirror would fail the same way: each missing file gets one attempt, whose
    /// failure says libcurl is not installed and where to put the files by hand, and nothing is written.
    func testWithoutLibcurlEachFileIsTriedOnceAndTheErrorSaysWhatToDo() throws {
        let port = try DataFixtures.unusedPort()
        let mirrors = ["http://127.0.0.1:\(port)/a/", "http://127.0.0.1:\(port)/b/"]
        var logged: [String] = []
        do {
            try ensureMNIST(
                directory: target, mirrors: mirrors, checksums: MNISTChecksums.decompressed, layout: .mnist, timeout: 5,
                libraryNames: ["libmlpc-absent-curl.so.4"]
            ) { logged.append($0) }
            XCTFail("expected a download error")
        } catch let error as DatasetDownloadError {
            XCTAssertEqual(error.missing.map(\.name), DatasetFileRole.allCases.map { layout.name(of: $0) })
            for file in error.missing {
                XCTAssertEqual(file.attempts.map(\.url), [mirrors[0] + file.name + ".gz"], "\(file.name) was tried more than once")
                let failure = file.attempts.first?.failure ?? ""
                XCTAssertTrue(failure.contains("libcurl (libmlpc-absent-curl.so.4) is not installed"), failure)
                XCTAssertTrue(failure.contains("put the MNIST files in \(target)"), failure)
            }
            XCTAssertTrue(error.description.contains("is not installed"), error.description)
        }
        XCTAssertEqual(logged.filter { $0.hasPrefix("downloading") }.count, DatasetFileRole.allCases.count, "\(logged)")
        XCTAssertEqual(filesInTarget(), [])
    }

    func testMirrorServing404GivesTheStatusAndTheNextMirrorIsTried() throws {
        let empty = "\(scratch)/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let missingServer = try LocalHTTPServer(serving: empty)
        servers.append(missingServer)
        let mirror = try serveDataset("mirror")
        var messages: [String] = []
        let written = try ensureMNIST(
            directory: target, mirrors: [missingServer.baseURL, mirror.url], checksums: checksums(mirror.contents), timeout: 10
        ) { messages.append($0) }
        XCTAssertEqual(written.count, 4)
        XCTAssertTrue(messages.contains { $0.contains("HTTP 404") }, "\(messages)")
    }

    func testCorruptFileFailsItsChecksumAndTheNextMirrorIsTried() throws {
        let bad = try serveDataset("bad", damage: [layout.trainLabels])
        let good = try serveDataset("good")
        var messages: [String] = []
        let written = try ensureMNIST(
            directory: target, mirrors: [bad.url, good.url], checksums: checksums(good.contents), timeout: 10) { messages.append($0) }
        XCTAssertEqual(written.count, 4)
        XCTAssertTrue(messages.contains { $0.contains("checksum mismatch for \(layout.trainLabels)") }, "\(messages)")
        let stored = try DataFixtures.read("\(target)/\(layout.trainLabels).gz")
        let file = try IDXFile.read(path: "\(target)/\(layout.trainLabels).gz")
        XCTAssertEqual(file.sha256, SHA256.hash(good.contents[layout.trainLabels]!))
        XCTAssertFalse(stored.isEmpty)
    }

    func testCorruptFileOnTheOnlyMirrorIsNamedAndNothingHalfWrittenRemains() throws {
        let bad = try serveDataset("bad", damage: [layout.testImages])
        let reference = "\(scratch)/reference"
        try FileManager.default.createDirectory(atPath: reference, withIntermediateDirectories: true)
        let sums = checksums(try DataFixtures.writeDataset(in: reference))
        do {
            try ensureMNIST(directory: target, mirrors: [bad.url], checksums: sums, timeout: 10) { _ in }
            XCTFail("expected a download error")
        } catch let error as DatasetDownloadError {
            XCTAssertEqual(error.missing.map(\.name), [layout.testImages])
            XCTAssertTrue(error.missing[0].attempts[0].failure.contains("checksum mismatch for \(layout.testImages)"), error.description)
        }
        // The three good files are stored; no partial or temporary file of the bad one exists.
        XCTAssertEqual(filesInTarget(), [layout.trainImages, layout.trainLabels, layout.testLabels].map { $0 + ".gz" }.sorted())
    }

    func testTruncatedGzipFromAMirrorIsRejected() throws {
        let root = "\(scratch)/cut"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let contents = try DataFixtures.writeDataset(in: root, compressed: true)
        let path = "\(root)/\(layout.trainImages).gz"
        let gz = try DataFixtures.read(path)
        try DataFixtures.write(Array(gz[..<(gz.count - 6)]), to: path)
        let server = try LocalHTTPServer(serving: root)
        servers.append(server)
        do {
            try ensureMNIST(directory: target, mirrors: [server.baseURL], checksums: checksums(contents), timeout: 10) { _ in }
            XCTFail("expected a download error")
        } catch let error as DatasetDownloadError {
            XCTAssertEqual(error.missing.map(\.name), [layout.trainImages])
            XCTAssertTrue(error.missing[0].attempts[0].failure.contains("truncated"), error.description)
        }
    }

    func testMirrorListComesFromTheEnvironment() {
        XCTAssertEqual(mnistMirrors(environment: [:]), defaultMNISTMirrors)
        XCTAssertEqual(defaultMNISTMirrors.first, "https://ossci-datasets.s3.amazonaws.com/mnist/")
        XCTAssertEqual(
            mnistMirrors(environment: ["MLPC_MNIST_MIRRORS": " http://a.example/x , https://b.example/y/,"]),
            ["http://a.example/x/", "https://b.example/y/"])
        XCTAssertEqual(mnistMirrors(environment: ["MLPC_MNIST_MIRRORS": " , "]), defaultMNISTMirrors)
    }
}
