import SpecParser

/// The affine map x * scale + shift that stands for PyTorch's `Normalize(mean, std)` applied after
/// `ToTensor()`, i.e. ((x / 255) - mean) / std for a pixel value x in 0...255.
///
/// Rounding: PyTorch rounds three times in float32 (the division by 255, the subtraction, the
/// division by std). Here `scale` = 1 / (255 * std) and `shift` = -mean / std are computed in double
/// precision from the float32 mean and std and rounded once to float32, and the gather rounds twice
/// (the product, then the sum, never fused, so the bits do not depend on the kernel set). Both results
/// are within a few float32 ulps of the exact value; they differ from each other by at most 4 ulps of
/// max(|result|, |shift|) for every pixel value and the usual means and deviations (the tests check
/// this against PyTorch's formula).
public struct PixelNormalization: Codable, Equatable, Sendable {
    public var mean: Float
    public var standardDeviation: Float
    public var scale: Float
    public var shift: Float

    /// `standardDeviation` must be positive and finite (the spec validator ensures it).
    public init(mean: Float, standardDeviation: Float) {
        self.mean = mean
        self.standardDeviation = standardDeviation
        let std = Double(standardDeviation)
        scale = Float(1.0 / (255.0 * std))
        shift = Float(-Double(mean) / std)
    }

    /// No normalization beyond dividing by 255 (mean 0, deviation 1).
    public static let unitRange = PixelNormalization(mean: 0, standardDeviation: 1)

    /// Whether every pixel value 0...255 maps to a finite float.
    public var mapsPixelsToFiniteValues: Bool {
        (Float(0) * scale + shift).isFinite && (Float(255) * scale + shift).isFinite
    }
}

/// How a dataset stores each sample's values: the gather converts them to float32.
public enum SampleElement: String, Codable, Sendable {
    /// Bytes, such as pixels (IDX).
    case uint8
    /// Floats, such as a table's numeric features.
    case float32
}

/// Copies the batch's samples into `input`, each value v as v * scale + shift (the
/// normalization's, or only the scale when the shifted-input pass folded the shift into the first
/// layer), and their class labels into `labels`.
public struct GatherBatch: KernelStep {
    public var input: Slice
    public var labels: Slice
    public var normalization: PixelNormalization
    /// What the dataset's samples are stored as.
    public var element: SampleElement = .uint8
    /// The layer that adds the normalization's shift itself (the shifted-input pass); the gather then
    /// writes v * scale, exactly 0 for a zero pixel.
    public var shiftFoldedInto: String? = nil
    /// A regressor's batch of target values (float32 [rows, targets]), gathered beside the labels.
    public var targets: Slice? = nil
    public var threads: Int

    public init(input: Slice, labels: Slice, normalization: PixelNormalization, threads: Int) {
        self.input = input
        self.labels = labels
        self.normalization = normalization
        self.threads = threads
    }

    /// The shift the gather adds.
    public var shift: Float { shiftFoldedInto == nil ? normalization.shift : 0 }

    public var reads: [Slice] { [] }
    public var writes: [Slice] { [input, labels] + (targets.map { [$0] } ?? []) }
    public var flops: Int { 2 * input.elements }
    public var label: String { "gather_batch" }
    public var passes: [String] { shiftFoldedInto == nil ? [] : [PlanPass.shiftedInput.rawValue] }

    public func mapSlices(_ f: (Slice) -> Slice) -> GatherBatch {
        var k = self
        k.input = f(input)
        k.labels = f(labels)
        k.targets = targets.map(f)
        return k
    }
}

/// predictions[row] = the index of the row's largest logit (the first on ties).
public struct Classify: KernelStep {
    public var logits: Slice
    public var predictions: Slice

    public init(logits: Slice, predictions: Slice) {
        self.logits = logits
        self.predictions = predictions
    }

    public var reads: [Slice] { [logits] }
    public var writes: [Slice] { [predictions] }
    public var flops: Int { logits.elements }
    public var threads: Int { 1 }
    public var label: String { "argmax" }

    public func mapSlices(_ f: (Slice) -> Slice) -> Classify {
        Classify(logits: f(logits), predictions: f(predictions))
    }
}

extension Plan {
    /// Whether the plan trains a regressor (its loss compares outputs with target values).
    public var isRegression: Bool {
        trainKernels.contains { if case .regressionLoss = $0 { return true } else { return false } }
    }

    /// What the training step's gather reads the samples as (uint8 when the plan has no gather).
    public var sampleElement: SampleElement {
        guard case .gatherBatch(let gather)? = trainKernels.first else { return .uint8 }
        return gather.element
    }
}
