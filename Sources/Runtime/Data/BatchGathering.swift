// Filling a training step's input: the examples named by a batch of indices are copied from the
// uint8 dataset into the float input slice, normalized on the way (the kernel set's `gatherRows`,
// compiled for the CPU's vector width), and their labels into an Int32 slice. The normalization's
// constants are worked out here, once per plan.

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
public struct PixelNormalization: Equatable, Sendable {
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
}
