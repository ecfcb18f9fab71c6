import Foundation
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

final class IDXDatasetTests: XCTestCase {
    private var directory = ""
    private let layout = IDXDatasetLayout.mnist

    override func setUpWithError() throws {
        directory = try DataFixtures.makeScratchDirectory(name)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func load(classCount: Int = 4, imageShape: [Int] = [2, 3], verification: ChecksumVerification = .mnistWhenCanonical) throws -> IDXDataset {
        try IDXDataset.load(directory: directory, classCount: classCount, imageShape: imageShape, verification: verification)
    }

    private func replace(_ name: String, with bytes: [UInt8]) throws {
        try DataFixtures.write(bytes, to: "\(directory)/\(name)")
    }

    // MARK: Loading

    func testLoadsUncompressedDataset() throws {
        let contents = try DataFixtures.writeDataset(in: directory)
        let dataset = try load()
        XCTAssertEqual(dataset.train.count, 5)
        XCTAssertEqual(dataset.test.count, 3)
        XCTAssertEqual(dataset.train.imageShape, [2, 3])
        XCTAssertEqual(dataset.train.featureCount, 6)
        XCTAssertEqual(dataset.train.images, Array(contents[layout.trainImages]![16...]))
        XCTAssertEqual(dataset.train.labels, [0, 1, 2, 3, 0])
        XCTAssertEqual(dataset.test.labels, [1, 2, 3])
        XCTAssertEqual(dataset.test.imagesPath, "\(directory)/\(layout.testImages)")
    }

    func testLoadsGzipDatasetAndReturnsTheDigestsOfTheDecompressedFiles() throws {
        let contents = try DataFixtures.writeDataset(in: directory, compressed: true)
        let dataset = try load()
        XCTAssertEqual(dataset.files.map(\.role), DatasetFileRole.allCases)
        for record in dataset.files {
            let name = layout.name(of: record.role)
            XCTAssertEqual(record.path, "\(directory)/\(name).gz")
            XCTAssertEqual(record.sha256, SHA256.hash(contents[name]!), name)
            XCTAssertFalse(record.verified, "tiny files are not MNIST, so nothing is verified")
        }
    }

    func testPrefersTheUncompressedFileWhenBothExist() throws {
        try DataFixtures.writeDataset(in: directory, compressed: true)
        try DataFixtures.writeDataset(in: directory, compressed: false)
        let dataset = try load()
        XCTAssertEqual(dataset.files[0].path, "\(directory)/\(layout.trainImages)")
    }

    // MARK: Problems

    func testMissingFilesAreListedWithTheirFullPaths() throws {
        try DataFixtures.writeDataset(in: directory)
        try FileManager.default.removeItem(atPath: "\(directory)/\(layout.trainLabels)")
        try FileManager.default.removeItem(atPath: "\(directory)/\(layout.testImages)")
        let error = DataFixtures.expectDatasetError { _ = try load() }
        XCTAssertEqual(error, .missingFiles(directory: directory, names: [layout.trainLabels, layout.testImages]))
        let text = error?.description ?? ""
        XCTAssertTrue(text.contains("\(directory)/\(layout.trainLabels).gz"), text)
        XCTAssertTrue(text.contains("\(directory)/\(layout.testImages).gz"), text)
    }

    func testIDXProblemNamesTheFile() throws {
        try DataFixtures.writeDataset(in: directory)
        try replace(layout.testLabels, with: DataFixtures.idx([3], [1, 2]))
        let error = DataFixtures.expectDatasetError { _ = try load() }
        guard case .file(let idxError) = error else { return XCTFail("expected a file error, got \(String(describing: error))") }
        XCTAssertEqual(idxError.path, "\(directory)/\(layout.testLabels)")
        XCTAssertEqual(idxError.kind, .truncatedData)
    }

    func testImagesMustBeThreeDimensional() throws {
        try DataFixtures.writeDataset(in: directory)
        try replace(layout.trainImages, with: DataFixtures.idx([5, 6], DataFixtures.images(count: 5, rows: 2, columns: 3)))
        let error = DataFixtures.expectDatasetError { _ = try load() }
        XCTAssertEqual(error, .wrongRank(path: "\(directory)/\(layout.trainImages)", role: .trainImages, expectedRank: 3, dimensions: [5, 6]))
    }

    func testLabelsMustBeOneDimensional() throws {
        try DataFixtures.writeDataset(in: directory)
        try replace(layout.testLabels, with: DataFixtures.idx([3, 1], [1, 2, 3]))
        let error = DataFixtures.expectDatasetError { _ = try load() }
        XCTAssertEqual(error, .wrongRank(path: "\(directory)/\(layout.testLabels)", role: .testLabels, expectedRank: 1, dimensions: [3, 1]))
    }

    func testImageShapeMustMatchTheExpectedShape() throws {
        try DataFixtures.writeDataset(in: directory)
        let error = DataFixtures.expectDatasetError { _ = try load(imageShape: [28, 28]) }
        XCTAssertEqual(error, .shapeMismatch(path: "\(directory)/\(layout.trainImages)", expected: [28, 28], actual: [2, 3]))
    }

    func testImageAndLabelCountsMustAgree() throws {
        try DataFixtures.writeDataset(in: directory)
        try replace(layout.trainLabels, with: DataFixtures.idx([4], [0, 1, 2, 3]))
        let error = DataFixtures.expectDatasetError { _ = try load() }
        XCTAssertEqual(error, .countMismatch(
            imagesPath: "\(directory)/\(layout.trainImages)", imageCount: 5, labelsPath: "\(directory)/\(layout.trainLabels)", labelCount: 4))
        XCTAssertTrue(error?.description.contains("4 labels") ?? false)
    }

    func testLabelOutOfRangeNamesTheFileExampleAndOffset() throws {
        try DataFixtures.writeDataset(in: directory)
        try replace(layout.trainLabels, with: DataFixtures.idx([5], [0, 1, 2, 9, 0]))
        let error = DataFixtures.expectDatasetError { _ = try load(classCount: 4) }
        XCTAssertEqual(error, .labelOutOfRange(path: "\(directory)/\(layout.trainLabels)", index: 3, label: 9, classCount: 4, offset: 11))
        XCTAssertTrue(error?.description.contains("byte 11") ?? false, error?.description ?? "")
    }

    func testChecksumMismatchNamesTheFile() throws {
        let contents = try DataFixtures.writeDataset(in: directory, compressed: true)
        var sums: [String: SHA256Digest] = [:]
        for (name, bytes) in contents { sums[name] = SHA256.hash(bytes) }
        sums[layout.testImages] = SHA256.hash([1, 2, 3])
        let error = DataFixtures.expectDatasetError { _ = try load(verification: .expected(sums)) }
        XCTAssertEqual(error, .checksumMismatch(
            path: "\(directory)/\(layout.testImages).gz", expected: SHA256.hash([1, 2, 3]), actual: SHA256.hash(contents[layout.testImages]!)))
    }

    func testMatchingExpectedChecksumsAreMarkedVerified() throws {
        let contents = try DataFixtures.writeDataset(in: directory)
        let sums = [layout.trainLabels: SHA256.hash(contents[layout.trainLabels]!)]
        let dataset = try load(verification: .expected(sums))
        XCTAssertEqual(dataset.files.filter(\.verified).map(\.role), [.trainLabels])
    }

    func testMNISTVerificationAppliesOnlyToTheCanonicalCounts() {
        XCTAssertEqual(IDXDataset.expectedChecksums(.mnistWhenCanonical, layout: .mnist, trainCount: 60000, testCount: 10000),
                       MNISTChecksums.decompressed)
        XCTAssertEqual(IDXDataset.expectedChecksums(.mnistWhenCanonical, layout: .mnist, trainCount: 5, testCount: 3), [:])
        XCTAssertEqual(IDXDataset.expectedChecksums(.disabled, layout: .mnist, trainCount: 60000, testCount: 10000), [:])
        let other = IDXDatasetLayout(trainImages: "a", trainLabels: "b", testImages: "c", testLabels: "d")
        XCTAssertEqual(IDXDataset.expectedChecksums(.mnistWhenCanonical, layout: other, trainCount: 60000, testCount: 10000), [:])
    }

    /// Datasets with MNIST's names and counts but none of its files (Fashion-MNIST, a user's own) are
    /// another dataset, not a damaged MNIST: nothing is compared. One matching file makes it MNIST, and
    /// then every file must match.
    func testMNISTChecksumsApplyWhenAnyFileIsMNISTs() {
        let mnist = MNISTChecksums.decompressed
        var other: [String: SHA256Digest] = [:]
        for name in mnist.keys { other[name] = SHA256.hash(Array(name.utf8)) }
        func verify(_ actual: [String: SHA256Digest]) -> [String: SHA256Digest] {
            IDXDataset.checksumsToVerify(.mnistWhenCanonical, layout: .mnist, trainCount: 60000, testCount: 10000, actual: actual)
        }
        XCTAssertEqual(verify(other), [:])
        XCTAssertEqual(verify(mnist), mnist)
        var damaged = mnist
        damaged[layout.trainImages] = SHA256.hash([1])
        XCTAssertEqual(verify(damaged), mnist)
        let sums = [layout.trainLabels: SHA256.hash([9])]
        XCTAssertEqual(
            IDXDataset.checksumsToVerify(.expected(sums), layout: .mnist, trainCount: 60000, testCount: 10000, actual: other), sums)
    }

    /// The end-to-end case: 60000 and 10000 examples under MNIST's names, none of them MNIST's.
    func testAnotherDatasetOfMNISTsSizeLoads() throws {
        let trainLabels = (0..<60000).map { UInt8($0 % 4) }
        try replace(layout.trainImages, with: DataFixtures.idx([60000, 1, 1], trainLabels))
        try replace(layout.trainLabels, with: DataFixtures.idx([60000], trainLabels))
        let testLabels = (0..<10000).map { UInt8($0 % 4) }
        try replace(layout.testImages, with: DataFixtures.idx([10000, 1, 1], testLabels))
        try replace(layout.testLabels, with: DataFixtures.idx([10000], testLabels))
        let dataset = try load(imageShape: [1, 1])
        XCTAssertEqual(dataset.train.count, 60000)
        XCTAssertEqual(dataset.files.filter(\.verified).count, 0)
    }

    // MARK: Header probe

    func testProbeReportsDimensionsOfEveryFile() throws {
        try DataFixtures.writeDataset(in: directory, compressed: true)
        let probe = probeDataset(directory: directory, imageShape: [2, 3])
        XCTAssertTrue(probe.isUsable, "\(probe.problems)")
        XCTAssertEqual(probe.files.map(\.count), [5, 5, 3, 3])
        XCTAssertEqual(probe.files[0].header?.dimensions, [5, 2, 3])
        XCTAssertEqual(probe.files[3].path, "\(directory)/\(layout.testLabels).gz")
    }

    func testProbeReportsMissingAndDamagedFilesSeparately() throws {
        try DataFixtures.writeDataset(in: directory)
        try FileManager.default.removeItem(atPath: "\(directory)/\(layout.testImages)")
        try replace(layout.trainLabels, with: [0, 0, 8])
        let probe = probeDataset(directory: directory)
        XCTAssertFalse(probe.isUsable)
        XCTAssertNil(probe.files[2].path)
        XCTAssertNil(probe.files[1].header)
        XCTAssertEqual(probe.files[0].header?.dimensions, [5, 2, 3])
        XCTAssertEqual(probe.problems.count, 2, "\(probe.problems)")
        XCTAssertEqual(probe.problems.first, .missingFiles(directory: directory, names: [layout.testImages]))
        guard case .file(let error) = probe.problems.last else { return XCTFail("\(probe.problems)") }
        XCTAssertEqual(error.kind, .truncatedHeader)
        XCTAssertEqual(error.path, "\(directory)/\(layout.trainLabels)")
    }

    func testProbeFindsCountMismatchFromHeadersAlone() throws {
        try DataFixtures.writeDataset(in: directory)
        try replace(layout.testLabels, with: DataFixtures.idx([4], [0, 1, 2, 3]))
        let probe = probeDataset(directory: directory)
        XCTAssertEqual(probe.problems, [.countMismatch(
            imagesPath: "\(directory)/\(layout.testImages)", imageCount: 3, labelsPath: "\(directory)/\(layout.testLabels)", labelCount: 4)])
    }

    /// eval, predict and show read one split; MNIST's checksums apply to it as to a run's data. Here the
    /// tiny test split stands in for MNIST's (its count and its files' digests given as MNIST's).
    func testASplitWithOneMNISTFileMustMatchInBoth() throws {
        let contents = try DataFixtures.writeDataset(in: directory)
        var sums: [String: SHA256Digest] = [:]
        for (name, bytes) in contents { sums[name] = SHA256.hash(bytes) }
        func load() throws -> LabeledImages {
            try loadDatasetSplit(
                directory: directory, split: .test, classCount: 4, inputShape: nil, layout: layout, mnistChecksums: sums,
                mnistCounts: (train: 5, test: 3))
        }
        XCTAssertEqual(try load().count, 3)
        // One label changed: the images are "MNIST's", so the labels must be too.
        var labels = contents[layout.testLabels]!
        labels[labels.count - 1] = 0
        try replace(layout.testLabels, with: labels)
        let error = DataFixtures.expectDatasetError { _ = try load() }
        XCTAssertEqual(error, .checksumMismatch(
            path: "\(directory)/\(layout.testLabels)", expected: sums[layout.testLabels]!, actual: SHA256.hash(labels)))
        // Neither file MNIST's: another dataset, loaded as it is.
        sums[layout.testImages] = SHA256.hash([1])
        XCTAssertEqual(try load().count, 3)
    }

    // MARK: The real MNIST

    func testRealMNISTLoadsAndVerifies() throws {
        guard let mnist = ProcessInfo.processInfo.environment["MLPC_TEST_MNIST_DIR"], !mnist.isEmpty else {
            throw XCTSkip("set MLPC_TEST_MNIST_DIR to a folder with the MNIST files to load and verify the real dataset")
        }
        let dataset = try IDXDataset.load(directory: mnist, classCount: 10, imageShape: [28, 28])
        XCTAssertEqual(dataset.train.count, 60000)
        XCTAssertEqual(dataset.test.count, 10000)
        XCTAssertTrue(dataset.files.allSatisfy(\.verified))
        var trainCounts = [Int](repeating: 0, count: 10)
        for label in dataset.train.labels { trainCounts[Int(label)] += 1 }
        XCTAssertEqual(trainCounts, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    }
}

/// Which image shapes a model's input shape takes.
final class InputShapeAcceptanceTests: XCTestCase {
    func testLeadingOnesAndFlatInputs() {
        XCTAssertTrue(acceptsImageShape([28, 28], input: [1, 28, 28]))
        XCTAssertTrue(acceptsImageShape([28, 28], input: [28, 28]))
        XCTAssertTrue(acceptsImageShape([28, 28], input: [784]))
        XCTAssertTrue(acceptsImageShape([28, 28], input: [1, 784]))
        XCTAssertTrue(acceptsImageShape([28, 28], input: [1, 1, 784]))
        XCTAssertFalse(acceptsImageShape([28, 28], input: [1, 783]))
        XCTAssertFalse(acceptsImageShape([28, 28], input: [2, 392]))
        XCTAssertFalse(acceptsImageShape([28, 28], input: [1, 32, 32]))
    }
}
