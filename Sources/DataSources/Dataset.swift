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

    /// Calls `body` with pointers to the samples and the class labels, for as long as `body` runs.
    /// A dataset of regression targets has no class labels: the step's gather then needs one of its
    /// own, which this runtime does not have yet, so `body` gets nil.
    public func withBatchSamples<R>(_ body: (BatchSamples?) throws -> R) rethrows -> R {
        guard case .classes(let labels, _) = targets else { return try body(nil) }
        return try labels.withUnsafeBufferPointer { labels in
            switch samples {
            case .uint8(let values):
                return try values.withUnsafeBufferPointer {
                    try body(BatchSamples(values: UnsafeRawPointer($0.baseAddress!), element: .uint8, labels: labels.baseAddress!, features: features))
                }
            case .float32(let values):
                return try values.withUnsafeBufferPointer {
                    try body(BatchSamples(values: UnsafeRawPointer($0.baseAddress!), element: .float32, labels: labels.baseAddress!, features: features))
                }
            }
        }
    }
}

/// A dataset's storage as a step's gather reads it: `features` values per sample in `element`'s type,
/// one class label per sample.
public struct BatchSamples: Equatable {
    public var values: UnsafeRawPointer
    public var element: SampleElement
    public var labels: UnsafePointer<Int32>
    public var features: Int

    public init(values: UnsafeRawPointer, element: SampleElement, labels: UnsafePointer<Int32>, features: Int) {
        self.values = values
        self.element = element
        self.labels = labels
        self.features = features
    }
}
