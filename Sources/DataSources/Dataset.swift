import Files
import Planner

/// A dataset's samples, back to back, `features` values each, in the element type they are stored in.
public enum SampleValues: Sendable {
    case uint8([UInt8])
    case float32([Float])

    public var element: SampleElement {
        switch self {
        case .uint8: return .uint8
        case .float32: return .float32
        }
    }

    /// Values of all samples.
    public var count: Int {
        switch self {
        case .uint8(let values): return values.count
        case .float32(let values): return values.count
        }
    }
}

/// What a model learns to predict for each sample.
public enum Targets: Sendable {
    /// One class index per sample, each below `classes`.
    case classes([Int32], classes: Int)
    /// `width` floats per sample (regression).
    case values([Float], width: Int)
}

/// A source of samples and their targets: what training, evaluation, prediction, the benchmark and the
/// pictures read, whatever file format the samples came from (`LabeledImages` is IDX's).
public protocol Dataset: Sendable {
    /// Samples.
    var count: Int { get }
    /// The shape of one sample (an image's [rows, columns], a table row's [features]).
    var sampleShape: [Int] { get }
    var samples: SampleValues { get }
    var targets: Targets { get }
    /// Where the samples come from, for messages (a file path).
    var origin: String { get }
}

extension Dataset {
    /// Values per sample.
    public var features: Int { sampleShape.reduce(1, *) }

    /// Sample `index` as 8-bit gray values, for the pictures; nil for samples that are not bytes.
    public func pixels(at index: Int) -> [UInt8]? {
        guard case .uint8(let values) = samples else { return nil }
        return Array(values[(index * features)..<((index + 1) * features)])
    }

    /// Width and height of one sample drawn as an image (a flat sample is one row).
    public var imageSize: (width: Int, height: Int) { imageDimensions(of: sampleShape) }

    /// The class index of sample `index`, for a dataset of classes (nil for regression targets).
    public func classIndex(at index: Int) -> Int? {
        guard case .classes(let labels, _) = targets else { return nil }
        return Int(labels[index])
    }

    /// Calls `body` with pointers to the samples and the class labels (or, for regression targets,
    /// the target values and labels of 0), for as long as `body` runs.
    public func withBatchSamples<R>(_ body: (BatchSamples?) throws -> R) rethrows -> R {
        switch targets {
        case .classes(let labels, _):
            return try labels.withUnsafeBufferPointer { labels in
                try withSampleValues { try body(BatchSamples(values: $0, element: samples.element, labels: labels.baseAddress!, features: features)) }
            }
        case .values(let values, let width):
            // The gather still copies a label a row: zeros, which a regressor's loss does not read.
            let zeros = [Int32](repeating: 0, count: max(count, 1))
            return try zeros.withUnsafeBufferPointer { labels in
                try values.withUnsafeBufferPointer { targets in
                    try withSampleValues {
                        var samples = BatchSamples(values: $0, element: samples.element, labels: labels.baseAddress!, features: features)
                        samples.targetValues = targets.baseAddress
                        samples.targetWidth = width
                        return try body(samples)
                    }
                }
            }
        }
    }

    private func withSampleValues<R>(_ body: (UnsafeRawPointer) throws -> R) rethrows -> R {
        switch samples {
        case .uint8(let values): return try values.withUnsafeBufferPointer { try body(UnsafeRawPointer($0.baseAddress!)) }
        case .float32(let values): return try values.withUnsafeBufferPointer { try body(UnsafeRawPointer($0.baseAddress!)) }
        }
    }

    /// What one unit of a regression target is in the file's units (the standard deviation the
    /// targets were divided by), per target column; empty for classes.
    public var targetScales: [Double] { (self as? TableDataset)?.targetStds ?? [] }
    public var targetOffsets: [Double] { (self as? TableDataset)?.targetMeans ?? [] }
    /// The names of the classes, in output order, where the data has them (a table's category target).
    public var classNames: [String] { (self as? TableDataset)?.classNames ?? [] }
}

/// A dataset's storage as a step's gather reads it: `features` values per sample in `element`'s type,
/// one class label per sample.
public struct BatchSamples: Equatable {
    public var values: UnsafeRawPointer
    public var element: SampleElement
    public var labels: UnsafePointer<Int32>
    public var features: Int
    /// A regressor's target values, `targetWidth` a sample (nil for classes).
    public var targetValues: UnsafePointer<Float>? = nil
    public var targetWidth = 0

    public init(values: UnsafeRawPointer, element: SampleElement, labels: UnsafePointer<Int32>, features: Int) {
        self.values = values
        self.element = element
        self.labels = labels
        self.features = features
    }
}
