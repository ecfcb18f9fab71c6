// Filling a training step's input: the examples named by a batch of indices are copied from the
// uint8 dataset into the float input slice, normalized on the way, and their labels into an Int32
// slice. Nothing here allocates; the loops are plain enough for the compiler to vectorize.

/// The affine map x * scale + shift that stands for PyTorch's `Normalize(mean, std)` applied after
/// `ToTensor()`, i.e. ((x / 255) - mean) / std for a pixel value x in 0...255.
///
/// Rounding: PyTorch rounds three times in float32 (the division by 255, the subtraction, the
/// division by std). Here `scale` = 1 / (255 * std) and `shift` = -mean / std are computed in double
/// precision from the float32 mean and std and rounded once to float32, and the gather rounds twice
/// (the product, then the sum; a fused multiply-add would be a library call on CPUs the Runtime is
/// compiled for). Both results are within a few float32 ulps of the exact value; they differ from
/// each other by at most 4 ulps of max(|result|, |shift|) for every pixel value and the usual means
/// and deviations (the tests check this against PyTorch's formula).
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

/// Copies the `count` examples whose positions are `indices[0..<count]` from `images` (each
/// `featureCount` bytes, back to back) into `out` (`count * featureCount` floats, row-major),
/// mapping each byte x to x * scale + shift. Every index must be in range of `images`; the indices
/// come from a `Shuffler` permutation, not from input files.
public func gatherBatch(
    images: UnsafePointer<UInt8>, featureCount: Int, indices: UnsafePointer<Int32>, count: Int,
    scale: Float, shift: Float, out: UnsafeMutablePointer<Float>
) {
    for row in 0..<count {
        let index = Int(indices[row])
        assert(index >= 0, "negative example index \(index)")
        let source = images + index * featureCount
        let destination = out + row * featureCount
        for feature in 0..<featureCount {
            destination[feature] = Float(source[feature]) * scale + shift
        }
    }
}

/// Copies the labels of the `count` examples at `indices[0..<count]` into `out` as Int32.
public func gatherLabels(labels: UnsafePointer<UInt8>, indices: UnsafePointer<Int32>, count: Int, out: UnsafeMutablePointer<Int32>) {
    for row in 0..<count {
        let index = Int(indices[row])
        assert(index >= 0, "negative example index \(index)")
        out[row] = Int32(labels[index])
    }
}
