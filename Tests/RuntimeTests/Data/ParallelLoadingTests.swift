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

// IDXDataset.load reads train images on a second thread while the calling thread reads the other
// three files. These tests check that this changes nothing a caller can see: the same arrays and
// digests as reading each file alone, and with bad files the error a one-by-one read in
// `DatasetFileRole.allCases` order reports, however the two threads happen to interleave.

final class ParallelLoadingTests: XCTestCase {
    private let layout = IDXDatasetLayout.mnist
    private let rows = 28
    private let columns = 28
    /// Enough train images (about 100 KB) that inflating them overlaps the other thread's reads.
    private let trainCount = 128
    private let testCount = 16
    private let classCount = 10
    /// Loads per case in the error-order tests: a race would make some of them report another file.
    private let iterations = 50

    // MARK: Fixtures

    private func makeDirectory() throws -> String {
        let directory = try DataFixtures.makeScratchDirectory(name)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        return directory
    }

    /// The uncompressed contents of a good file for each role.
    private func goodContents(_ role: DatasetFileRole) -> [UInt8] {
        switch role {
        case .trainImages:
            return DataFixtures.idx([trainCount, rows, columns], DataFixtures.images(count: trainCount, rows: rows, columns: columns))
        case .trainLabels:
            return DataFixtures.idx([trainCount], (0..<trainCount).map { UInt8($0 % classCount) })
        case .testImages:
            return DataFixtures.idx([testCount, rows, columns], DataFixtures.images(count: testCount, rows: rows, columns: columns).reversed())
        case .testLabels:
            return DataFixtures.idx([testCount], (0..<testCount).map { UInt8(($0 + 3) % classCount) })
        }
    }

    /// Images are stored gzipped and labels plain, so both readers run on both threads.
    private func isCompressed(_ role: DatasetFileRole) -> Bool {
        role == .trainImages || role == .testImages
    }

    /// A damaged version of each role's file, each damaged in its own way. Train images loses only
    /// its gzip trailer, so it fails at the very end, after every other file has been read.
    private func badStored(_ role: DatasetFileRole) -> [UInt8] {
        let good = goodContents(role)
        switch role {
        case .trainImages:
            return Array(DataFixtures.gzip(good).dropLast(8))
        case .trainLabels:
            return DataFixtures.idx([trainCount], [], typeCode: 0x0D)
        case .testImages:
            return DataFixtures.gzip(good + [1, 2, 3])
        case .testLabels:
            return Array(good.prefix(6))
        }
    }

    /// Writes the four files, the roles in `bad` damaged, and returns each role's path.
    @discardableResult
    private func writeFiles(in directory: String, bad: Set<DatasetFileRole> = []) throws -> [DatasetFileRole: String] {
        var paths: [DatasetFileRole: String] = [:]
        for role in DatasetFileRole.allCases {
            let path = "\(directory)/\(layout.name(of: role))" + (isCompressed(role) ? ".gz" : "")
            let good = goodContents(role)
            let stored = bad.contains(role) ? badStored(role) : isCompressed(role) ? DataFixtures.gzip(good) : good
            try DataFixtures.write(stored, to: path)
            paths[role] = path
        }
        return paths
    }

    private func load(_ directory: String) throws -> IDXDataset {
        try IDXDataset.load(
            directory: directory, classCount: classCount, imageShape: [rows, columns], verification: .disabled)
    }

    /// The error of reading the files one at a time in `DatasetFileRole.allCases` order, as
    /// IDXDataset.load did before it used a second thread.
    private func sequentialError(_ paths: [DatasetFileRole: String]) -> DatasetError? {
        for role in DatasetFileRole.allCases {
            guard let path = paths[role] else { continue }
            do {
                _ = try IDXFile.read(path: path)
            } catch let error as IDXError {
                return .file(error)
            } catch {
                XCTFail("IDXFile.read threw a non-IDX error: \(error)")
                return nil
            }
        }
        return nil
    }

    // MARK: Tests

    func testLoadGivesTheSameDataAndDigestsAsReadingEachFileAlone() throws {
        let directory = try makeDirectory()
        let paths = try writeFiles(in: directory)
        let dataset = try load(directory)

        var alone: [DatasetFileRole: IDXFile] = [:]
        for role in DatasetFileRole.allCases {
            alone[role] = try IDXFile.read(path: XCTUnwrap(paths[role]))
        }
        XCTAssertEqual(dataset.train.images, alone[.trainImages]?.data)
        XCTAssertEqual(dataset.train.labels, alone[.trainLabels]?.data.map { Int32($0) })
        XCTAssertEqual(dataset.test.images, alone[.testImages]?.data)
        XCTAssertEqual(dataset.test.labels, alone[.testLabels]?.data.map { Int32($0) })
        XCTAssertEqual(dataset.files.map(\.role), DatasetFileRole.allCases)
        for record in dataset.files {
            XCTAssertEqual(record.path, paths[record.role])
            XCTAssertEqual(record.sha256, alone[record.role]?.sha256, record.role.rawValue)
            // And the digest is that of the decompressed bytes, not only the same as a lone read's.
            XCTAssertEqual(record.sha256, SHA256.hash(goodContents(record.role)), record.role.rawValue)
        }
    }

    func testWithTwoBadFilesTheErrorIsTheFirstInFileOrder() throws {
        let roles = DatasetFileRole.allCases
        for (firstIndex, first) in roles.enumerated() {
            for second in roles[(firstIndex + 1)...] {
                let directory = try makeDirectory()
                let paths = try writeFiles(in: directory, bad: [first, second])
                let expected = try XCTUnwrap(sequentialError(paths))
                guard case .file(let expectedFileError) = expected else {
                    return XCTFail("the sequential read reported \(expected), not a file error")
                }
                // The reference itself must blame the earlier file, or this test would prove nothing.
                XCTAssertEqual(expectedFileError.path, paths[first])
                for iteration in 0..<iterations {
                    let error = DataFixtures.expectDatasetError { _ = try load(directory) }
                    XCTAssertEqual(error, expected, "bad \(first.rawValue) and \(second.rawValue), load \(iteration)")
                }
            }
        }
    }

    func testBadTrainImagesWithGoodOtherFilesReportsTheTrainImagesError() throws {
        let directory = try makeDirectory()
        let paths = try writeFiles(in: directory, bad: [.trainImages])
        let trainImages = try XCTUnwrap(paths[.trainImages])
        let alone = DataFixtures.expectIDXError(.truncatedCompression) { _ = try IDXFile.read(path: trainImages) }
        let expected = try XCTUnwrap(alone)
        for iteration in 0..<iterations {
            let error = DataFixtures.expectDatasetError { _ = try load(directory) }
            XCTAssertEqual(error, .file(expected), "load \(iteration)")
        }
    }

    func testRunConcurrentlyRunsTheBackgroundWorkOnAnotherThreadAndJoinsIt() {
        let caller = pthread_self()
        let finished = LockedFlag()
        let (background, here) = runConcurrently(
            { () -> pthread_t in
                // Late enough that a call returning without the join would return before this.
                usleep(50_000)
                finished.set()
                return pthread_self()
            },
            { pthread_self() })
        XCTAssertEqual(pthread_equal(here, caller), 1, "`here` runs on the calling thread")
        XCTAssertEqual(pthread_equal(background, caller), 0, "`background` runs on a thread of its own")
        XCTAssertTrue(finished.isSet, "the background work has finished when runConcurrently returns")
    }
}

/// A flag set on one thread and read on another after they synchronize; the lock keeps the test
/// itself free of data races whatever runConcurrently does.
private final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false

    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
