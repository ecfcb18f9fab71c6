import Files
import Foundation
import Planner

/// The training or the test half of an IDX dataset.
public enum DatasetSplit: String, Sendable {
    case train, test
}

/// Loads one split (images and labels) from `directory`, without downloading anything and without
/// reading the other split: what `mlpc eval`, `predict --index` and `show` need. `classCount` bounds the
/// labels (256 accepts any); `inputShape`, when given, must fit the images as it does for training.
/// MNIST's checksums apply as they do to a run's data: when the split has MNIST's count and one of its
/// two files is MNIST's, the other must be too (`mnistChecksums` and `mnistCounts` are for tests).
public func loadDatasetSplit(
    directory: String, split: DatasetSplit, classCount: Int = 256, inputShape: [Int]? = nil, layout: IDXDatasetLayout = .mnist
) throws -> LabeledImages {
    try loadDatasetSplit(
        directory: directory, split: split, classCount: classCount, inputShape: inputShape, layout: layout,
        mnistChecksums: MNISTChecksums.decompressed, mnistCounts: (MNISTChecksums.trainCount, MNISTChecksums.testCount))
}

func loadDatasetSplit(
    directory: String, split: DatasetSplit, classCount: Int, inputShape: [Int]?, layout: IDXDatasetLayout,
    mnistChecksums: [String: SHA256Digest], mnistCounts: (train: Int, test: Int)
) throws -> LabeledImages {
    let located = DatasetLocator.locate(directory: directory, layout: layout)
    let roles: (images: DatasetFileRole, labels: DatasetFileRole) =
        split == .train ? (.trainImages, .trainLabels) : (.testImages, .testLabels)
    let missing = [roles.images, roles.labels].filter { located[$0] == nil }.map { layout.name(of: $0) }
    guard missing.isEmpty, let imagesPath = located[roles.images], let labelsPath = located[roles.labels] else {
        throw DatasetError.missingFiles(directory: directory, names: missing)
    }
    let images: IDXFile, labels: IDXFile
    do {
        images = try IDXFile.read(path: imagesPath)
        labels = try IDXFile.read(path: labelsPath)
    } catch let error as IDXError {
        throw DatasetError.file(error)
    }
    let canonicalCount = split == .train ? mnistCounts.train : mnistCounts.test
    if layout == .mnist, images.dimensions.first == canonicalCount {
        let files = [(role: roles.images, file: images), (role: roles.labels, file: labels)]
        let actual = Dictionary(uniqueKeysWithValues: files.map { (layout.name(of: $0.role), $0.file.sha256) })
        _ = try IDXDataset.verifyChecksums(
            files, expected: IDXDataset.checksumsWhenOneMatches(mnistChecksums, actual: actual), layout: layout)
    }
    guard images.dimensions.count == 3 else {
        throw DatasetError.wrongRank(path: images.path, role: roles.images, expectedRank: 3, dimensions: images.dimensions)
    }
    let imageShape = Array(images.dimensions.dropFirst())
    if let inputShape, !acceptsImageShape(imageShape, input: inputShape) {
        throw DatasetError.shapeMismatch(path: images.path, expected: inputShape, actual: imageShape)
    }
    return try IDXDataset.pair(
        images: images, labels: labels, imagesRole: roles.images, labelsRole: roles.labels, classCount: classCount,
        imageShape: imageShape)
}

extension LabeledImages {
    /// The pixels of image `index` (which must be below `count`).
    public func image(at index: Int) -> [UInt8] {
        let n = featureCount
        return Array(images[(index * n)..<((index + 1) * n)])
    }
}
