import Planner
import Files
import Foundation

// A labelled image dataset stored as four IDX files (train and test images and labels), such as
// MNIST. Loading reads and checks all four before training starts, so every problem is reported
// up front with the file (and where it makes sense the byte offset) it is in; `probeDataset` does
// the checks that need only the headers, for `mlpc check`.

/// The four files of a dataset, by role.
public enum DatasetFileRole: String, CaseIterable, Sendable {
    case trainImages = "train images"
    case trainLabels = "train labels"
    case testImages = "test images"
    case testLabels = "test labels"
}

/// The file names of a dataset's four files. Each is looked for as NAME, then as NAME.gz.
public struct IDXDatasetLayout: Equatable, Sendable {
    public var trainImages: String
    public var trainLabels: String
    public var testImages: String
    public var testLabels: String

    public init(trainImages: String, trainLabels: String, testImages: String, testLabels: String) {
        self.trainImages = trainImages
        self.trainLabels = trainLabels
        self.testImages = testImages
        self.testLabels = testLabels
    }

    /// The file names of the MNIST release.
    public static let mnist = IDXDatasetLayout(
        trainImages: "train-images-idx3-ubyte", trainLabels: "train-labels-idx1-ubyte",
        testImages: "t10k-images-idx3-ubyte", testLabels: "t10k-labels-idx1-ubyte")

    public func name(of role: DatasetFileRole) -> String {
        switch role {
        case .trainImages: return trainImages
        case .trainLabels: return trainLabels
        case .testImages: return testImages
        case .testLabels: return testLabels
        }
    }
}

/// The SHA-256 checksums of the decompressed MNIST files (the same for every faithful copy, however
/// it was compressed), by file name.
public enum MNISTChecksums {
    public static let trainCount = 60000
    public static let testCount = 10000

    public static let decompressed: [String: SHA256Digest] = [
        "train-images-idx3-ubyte": digest("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        "train-labels-idx1-ubyte": digest("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        "t10k-images-idx3-ubyte": digest("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        "t10k-labels-idx1-ubyte": digest("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    ]

    private static func digest(_ hex: String) -> SHA256Digest {
        // The literals above are 64 hexadecimal digits each.
        SHA256Digest(hex: hex)!
    }
}

/// Which checksums `IDXDataset.load` verifies.
public enum ChecksumVerification: Sendable {
    /// The MNIST checksums, when the layout is MNIST's, the headers give 60000 training and 10000 test
    /// examples, and at least one file is MNIST's. Other datasets share MNIST's names and sizes
    /// (Fashion-MNIST, or a user's own): when no file matches, the files are another dataset, not a
    /// damaged MNIST, and nothing is compared; when some match, every one must.
    case mnistWhenCanonical
    /// No verification (the digests are still computed and returned).
    case disabled
    /// These checksums, by file name (without ".gz"); files not named here are not verified.
    case expected([String: SHA256Digest])
}

/// A problem with a dataset; each names the file it is in.
public enum DatasetError: Error, CustomStringConvertible, Equatable, Sendable {
    /// None of the names tried exists for these files.
    case missingFiles(directory: String, names: [String])
    /// The file could not be read as IDX.
    case file(IDXError)
    case wrongRank(path: String, role: DatasetFileRole, expectedRank: Int, dimensions: [Int])
    case shapeMismatch(path: String, expected: [Int], actual: [Int])
    case countMismatch(imagesPath: String, imageCount: Int, labelsPath: String, labelCount: Int)
    /// `offset` is the byte offset of the label (in the decompressed data for a gzip file).
    case labelOutOfRange(path: String, index: Int, label: Int, classCount: Int, offset: Int)
    case checksumMismatch(path: String, expected: SHA256Digest, actual: SHA256Digest)

    public var description: String {
        switch self {
        case .missingFiles(let directory, let names):
            let lines = names.map { name in
                "  \(name): put \(name).gz (or the decompressed \(name)) at \(pathForMessage(DatasetLocator.path(directory, name))).gz"
            }
            return "dataset files are missing from \(pathForMessage(directory)):\n" + lines.joined(separator: "\n")
        case .file(let error):
            return error.description
        case .wrongRank(let path, let role, let expectedRank, let dimensions):
            return "\(pathForMessage(path)): \(role.rawValue) must have \(expectedRank) dimension\(expectedRank == 1 ? "" : "s"), "
                + "but the file has \(dimensions.count) (\(IDXHeader.dimensionText(dimensions)))"
        case .shapeMismatch(let path, let expected, let actual):
            return "\(pathForMessage(path)): images are \(IDXHeader.dimensionText(actual)), but the model expects "
                + "\(IDXHeader.dimensionText(expected))"
        case .countMismatch(let imagesPath, let imageCount, let labelsPath, let labelCount):
            return "\(pathForMessage(labelsPath)): \(labelCount) labels, but \(pathForMessage(imagesPath)) holds \(imageCount) images"
        case .labelOutOfRange(let path, let index, let label, let classCount, let offset):
            let place = path.hasSuffix(".gz") ? "byte \(offset) of the decompressed data" : "byte \(offset)"
            return "\(pathForMessage(path)): \(place): label \(label) of example \(index) is out of range: the model has "
                + "\(classCount) classes (labels 0...\(classCount - 1))"
        case .checksumMismatch(let path, let expected, let actual):
            return "\(pathForMessage(path)): SHA-256 of the decompressed bytes is \(actual.hex), expected \(expected.hex): "
                + "the file is damaged or not the expected release; delete it and fetch it again"
        }
    }
}

/// Images (uint8, row-major, `count * featureCount` bytes) and their class labels: the `Dataset` an IDX
/// pair of files gives.
public struct LabeledImages: Dataset {
    public var images: [UInt8]
    public var labels: [Int32]
    public var count: Int
    /// The shape of one image (rows, columns).
    public var imageShape: [Int]
    public var imagesPath: String
    public var labelsPath: String
    /// Classes the labels are below (for `targets`).
    public var classes: Int

    /// `labels` as IDX stores them, one byte each; `classes` defaults to 256, what a byte can say.
    public init(
        images: [UInt8], labels: [UInt8], count: Int, imageShape: [Int], imagesPath: String, labelsPath: String, classes: Int = 256
    ) {
        self.images = images
        self.labels = labels.map { Int32($0) }
        self.count = count
        self.imageShape = imageShape
        self.imagesPath = imagesPath
        self.labelsPath = labelsPath
        self.classes = classes
    }

    public var featureCount: Int { imageShape.reduce(1, *) }

    public var sampleShape: [Int] { imageShape }
    public var samples: SampleValues { .uint8(images) }
    public var targets: Targets { .classes(labels, classes: classes) }
    public var origin: String { imagesPath }
}

/// One file of a loaded dataset and the SHA-256 of its decompressed bytes.
public struct DatasetFileRecord: Equatable, Sendable {
    public var role: DatasetFileRole
    public var path: String
    public var sha256: SHA256Digest
    /// True when the digest was compared with an expected checksum (and matched).
    public var verified: Bool
}

/// A loaded and checked dataset.
public struct IDXDataset: Sendable {
    public var train: LabeledImages
    public var test: LabeledImages
    /// The four files, in `DatasetFileRole.allCases` order.
    public var files: [DatasetFileRecord]

    /// Loads the four files from `directory`, checks them (images three-dimensional with each image
    /// of `imageShape`, labels one-dimensional, as many labels as images, every label below
    /// `classCount`) and verifies their checksums as `verification` says.
    public static func load(
        directory: String, layout: IDXDatasetLayout = .mnist, classCount: Int, imageShape: [Int],
        verification: ChecksumVerification = .mnistWhenCanonical
    ) throws -> IDXDataset {
        let located = DatasetLocator.locate(directory: directory, layout: layout)
        let missing = DatasetFileRole.allCases.filter { located[$0] == nil }.map { layout.name(of: $0) }
        guard missing.isEmpty else { throw DatasetError.missingFiles(directory: directory, names: missing) }

        let files = try readFiles(located)
        guard let trainImages = files[.trainImages], let trainLabels = files[.trainLabels],
            let testImages = files[.testImages], let testLabels = files[.testLabels]
        else {
            throw DatasetError.missingFiles(directory: directory, names: missing)
        }

        var digests: [String: SHA256Digest] = [:]
        for (role, file) in files { digests[layout.name(of: role)] = file.sha256 }
        let expected = checksumsToVerify(
            verification, layout: layout, trainCount: trainImages.dimensions[0], testCount: testImages.dimensions[0], actual: digests)
        let present = DatasetFileRole.allCases.compactMap { role in files[role].map { (role: role, file: $0) } }
        let verified = try verifyChecksums(present, expected: expected, layout: layout)
        let records = zip(present, verified).map { entry, verified in
            DatasetFileRecord(role: entry.role, path: entry.file.path, sha256: entry.file.sha256, verified: verified)
        }

        let train = try pair(images: trainImages, labels: trainLabels, imagesRole: .trainImages, labelsRole: .trainLabels,
                             classCount: classCount, imageShape: imageShape)
        let test = try pair(images: testImages, labels: testLabels, imagesRole: .testImages, labelsRole: .testLabels,
                            classCount: classCount, imageShape: imageShape)
        return IDXDataset(train: train, test: test, files: records)
    }

    /// Reads the files at `paths`. Train images, the largest by far (inflating it is most of the load
    /// time), is read on a second thread while this thread reads the rest and then hashes the train
    /// images as they are inflated (`PipelinedSHA256`). Each outcome is kept, and the first failure in
    /// `DatasetFileRole.allCases` order is thrown only after the join, so the error is the one a
    /// sequential read reports, whichever thread fails first.
    static func readFiles(_ paths: [DatasetFileRole: String]) throws -> [DatasetFileRole: IDXFile] {
        let read = { (path: String) in Result { try IDXFile.read(path: path) } }
        let trainImagesHash = PipelinedSHA256()
        let (trainImages, others) = runConcurrently(
            { paths[.trainImages].map { path in Result { try IDXFile.read(path: path, hashedBy: trainImagesHash) } } },
            { () -> [DatasetFileRole: Result<IDXFile, Error>] in
                // Whatever happens to the other files, hash the train images as they come (when the
                // train images were read first, without a second thread, this returns at once).
                defer { if paths[.trainImages] != nil { trainImagesHash.hashUntilClosed() } }
                var outcomes: [DatasetFileRole: Result<IDXFile, Error>] = [:]
                for role in DatasetFileRole.allCases where role != .trainImages {
                    guard let path = paths[role] else { continue }
                    let outcome = read(path)
                    outcomes[role] = outcome
                    // The files after this one come later in the order, so none of them can
                    // change which error is reported: skip them.
                    if case .failure = outcome { break }
                }
                return outcomes
            })
        var outcomes = others
        outcomes[.trainImages] = trainImages

        var files: [DatasetFileRole: IDXFile] = [:]
        for role in DatasetFileRole.allCases {
            switch outcomes[role] {
            case .success(let file): files[role] = file
            case .failure(let error as IDXError): throw DatasetError.file(error)
            case .failure(let error): throw error
            case nil: continue
            }
        }
        return files
    }

    /// The checksums to compare the files' `actual` digests with (by file name), as `verification` says.
    static func checksumsToVerify(
        _ verification: ChecksumVerification, layout: IDXDatasetLayout, trainCount: Int, testCount: Int,
        actual: [String: SHA256Digest]
    ) -> [String: SHA256Digest] {
        let expected = expectedChecksums(verification, layout: layout, trainCount: trainCount, testCount: testCount)
        if case .mnistWhenCanonical = verification { return checksumsWhenOneMatches(expected, actual: actual) }
        return expected
    }

    /// `expected`, or none when no file's `actual` digest is the one `expected` has for its name: MNIST's
    /// checksums hold files of MNIST's counts to them only when one of the files is MNIST's (another
    /// dataset of the same size, such as Fashion-MNIST, is not damaged MNIST).
    static func checksumsWhenOneMatches(_ expected: [String: SHA256Digest], actual: [String: SHA256Digest]) -> [String: SHA256Digest] {
        actual.contains(where: { expected[$0.key] == $0.value }) ? expected : [:]
    }

    /// Compares each file's digest with the checksum `expected` has for its name, in the order given, and
    /// throws `checksumMismatch` for the first that differs; returns, per file, whether it had one.
    static func verifyChecksums(
        _ files: [(role: DatasetFileRole, file: IDXFile)], expected: [String: SHA256Digest], layout: IDXDatasetLayout
    ) throws -> [Bool] {
        try files.map { role, file in
            guard let want = expected[layout.name(of: role)] else { return false }
            guard want == file.sha256 else { throw DatasetError.checksumMismatch(path: file.path, expected: want, actual: file.sha256) }
            return true
        }
    }

    static func expectedChecksums(
        _ verification: ChecksumVerification, layout: IDXDatasetLayout, trainCount: Int, testCount: Int
    ) -> [String: SHA256Digest] {
        switch verification {
        case .disabled:
            return [:]
        case .expected(let sums):
            return sums
        case .mnistWhenCanonical:
            let canonical = layout == .mnist && trainCount == MNISTChecksums.trainCount && testCount == MNISTChecksums.testCount
            return canonical ? MNISTChecksums.decompressed : [:]
        }
    }

    /// Checks one images/labels pair and makes it a `LabeledImages`.
    static func pair(
        images: IDXFile, labels: IDXFile, imagesRole: DatasetFileRole, labelsRole: DatasetFileRole,
        classCount: Int, imageShape: [Int]
    ) throws -> LabeledImages {
        try checkHeaders(images: images.header, labels: labels.header, imagesRole: imagesRole, labelsRole: labelsRole,
                         imageShape: imageShape)
        let headerLength = labels.header.headerLength
        if let index = labels.data.firstIndex(where: { Int($0) >= classCount }) {
            throw DatasetError.labelOutOfRange(
                path: labels.path, index: index, label: Int(labels.data[index]), classCount: classCount,
                offset: headerLength + index)
        }
        return LabeledImages(
            images: images.data, labels: labels.data, count: images.dimensions[0], imageShape: Array(images.dimensions.dropFirst()),
            imagesPath: images.path, labelsPath: labels.path, classes: classCount)
    }

    /// The checks that need only the two headers: ranks, image shape, matching counts.
    static func checkHeaders(
        images: IDXHeader, labels: IDXHeader, imagesRole: DatasetFileRole, labelsRole: DatasetFileRole, imageShape: [Int]
    ) throws {
        guard images.dimensions.count == 3 else {
            throw DatasetError.wrongRank(path: images.path, role: imagesRole, expectedRank: 3, dimensions: images.dimensions)
        }
        guard labels.dimensions.count == 1 else {
            throw DatasetError.wrongRank(path: labels.path, role: labelsRole, expectedRank: 1, dimensions: labels.dimensions)
        }
        let shape = Array(images.dimensions.dropFirst())
        guard shape == imageShape else {
            throw DatasetError.shapeMismatch(path: images.path, expected: imageShape, actual: shape)
        }
        guard images.dimensions[0] == labels.dimensions[0] else {
            throw DatasetError.countMismatch(
                imagesPath: images.path, imageCount: images.dimensions[0], labelsPath: labels.path, labelCount: labels.dimensions[0])
        }
    }
}

/// Finds a dataset's files on disk.
enum DatasetLocator {
    static func path(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// The path of each file that exists, as NAME or else NAME.gz (the uncompressed one is preferred:
    /// it reads faster, and a directory holding both is usually one a tool decompressed into).
    static func locate(directory: String, layout: IDXDatasetLayout) -> [DatasetFileRole: String] {
        var found: [DatasetFileRole: String] = [:]
        for role in DatasetFileRole.allCases {
            let plain = path(directory, layout.name(of: role))
            // Anything at the name counts as the file, so that a directory, a dangling symbolic link or
            // a FIFO there is reported as unusable by the reader, not as missing (and downloaded over).
            for candidate in [plain, plain + ".gz"] where found[role] == nil {
                var info = stat()
                if lstat(candidate, &info) == 0 { found[role] = candidate }
            }
        }
        return found
    }
}

/// What a header-only look at a dataset directory found: each file's header, or the problems.
public struct DatasetProbe: Sendable {
    public struct File: Sendable {
        public var role: DatasetFileRole
        /// The file name looked for (without ".gz").
        public var name: String
        /// The path found, nil when the file is missing.
        public var path: String?
        /// The header, nil when the file is missing or its header is bad (see `problems`).
        public var header: IDXHeader?

        /// The number of examples the file holds (its first dimension), when its header was read.
        public var count: Int? { header?.dimensions.first }
    }

    public var directory: String
    /// The four files, in `DatasetFileRole.allCases` order.
    public var files: [File]
    /// Every problem found; empty when the headers allow loading (data checks such as label ranges
    /// and checksums happen at load time).
    public var problems: [DatasetError]

    public var isUsable: Bool { problems.isEmpty }
}

/// Reads only the headers of the dataset in `directory` and reports per-file dimensions or
/// problems, plus the checks between headers (ranks, counts, and the image shape when given).
public func probeDataset(directory: String, layout: IDXDatasetLayout = .mnist, imageShape: [Int]? = nil) -> DatasetProbe {
    let located = DatasetLocator.locate(directory: directory, layout: layout)
    var files: [DatasetProbe.File] = []
    var problems: [DatasetError] = []
    var missing: [String] = []
    for role in DatasetFileRole.allCases {
        let name = layout.name(of: role)
        guard let path = located[role] else {
            missing.append(name)
            files.append(DatasetProbe.File(role: role, name: name, path: nil, header: nil))
            continue
        }
        do {
            let header = try IDXHeader.read(path: path)
            files.append(DatasetProbe.File(role: role, name: name, path: path, header: header))
        } catch let error as IDXError {
            problems.append(.file(error))
            files.append(DatasetProbe.File(role: role, name: name, path: path, header: nil))
        } catch {
            problems.append(.file(IDXError(path: path, kind: .unreadable, position: .none, reason: "\(error)")))
            files.append(DatasetProbe.File(role: role, name: name, path: path, header: nil))
        }
    }
    if !missing.isEmpty { problems.insert(.missingFiles(directory: directory, names: missing), at: 0) }

    let byRole = Dictionary(uniqueKeysWithValues: files.map { ($0.role, $0) })
    for (imagesRole, labelsRole) in [(DatasetFileRole.trainImages, DatasetFileRole.trainLabels), (.testImages, .testLabels)] {
        guard let images = byRole[imagesRole]?.header, let labels = byRole[labelsRole]?.header else { continue }
        let shape = imageShape ?? Array(images.dimensions.dropFirst())
        do {
            try IDXDataset.checkHeaders(images: images, labels: labels, imagesRole: imagesRole, labelsRole: labelsRole, imageShape: shape)
        } catch let error as DatasetError {
            problems.append(error)
        } catch {
            problems.append(.file(IDXError(path: images.path, kind: .unreadable, position: .none, reason: "\(error)")))
        }
    }
    return DatasetProbe(directory: directory, files: files, problems: problems)
}
