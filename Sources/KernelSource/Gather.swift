import KernelInterface

/// Copies this part's share of the `count` examples whose positions are `indices[0..<count]` from
/// `images` (each `featureCount` bytes, back to back) into `out` (`count * featureCount` floats,
/// row-major), mapping each byte x to x * scale + shift, and their labels into `labelsOut`.
/// Rows are split between parts, so any split writes the same bits.
///
/// The map is a product then a sum, two roundings, never a fused multiply-add: the bits must not
/// depend on the instruction set (the planner's `PixelNormalization` documents the rounding). It lives
/// with the kernels so that the byte-to-float conversion runs 16 lanes wide; compiled for a generic
/// x86-64 it took a tenth of a training step.
public func gatherRows(
    _ images: UnsafePointer<UInt8>, _ labels: UnsafePointer<Int32>, _ featureCount: Int,
    _ indices: UnsafePointer<Int32>, _ count: Int, _ scale: Float, _ shift: Float,
    _ out: UnsafeMutablePointer<Float>, _ labelsOut: UnsafeMutablePointer<Int32>, _ part: Int, _ parts: Int
) {
    let rows = partRange(count: count, granule: 1, part: part, parts: parts)
    for row in rows {
        let index = Int(indices[row])
        let source = images + index * featureCount
        let destination = out + row * featureCount
        // A plain loop: LLVM widens it to 16 lanes (zero-extend, convert, multiply, add); the SIMD16
        // initializer from UInt8 lanes is a generic library call per vector instead.
        for feature in 0..<featureCount {
            let product = Float(source[feature]) * scale
            destination[feature] = product + shift
        }
        labelsOut[row] = labels[index]
    }
}

/// `gatherRows` for float32 samples (a table's features): each value x becomes x * scale + shift, a
/// product then a sum, as for bytes.
public func gatherFloatRows(
    _ samples: UnsafePointer<Float>, _ labels: UnsafePointer<Int32>, _ featureCount: Int,
    _ indices: UnsafePointer<Int32>, _ count: Int, _ scale: Float, _ shift: Float,
    _ out: UnsafeMutablePointer<Float>, _ labelsOut: UnsafeMutablePointer<Int32>, _ part: Int, _ parts: Int
) {
    let rows = partRange(count: count, granule: 1, part: part, parts: parts)
    for row in rows {
        let index = Int(indices[row])
        let source = samples + index * featureCount
        let destination = out + row * featureCount
        for feature in 0..<featureCount {
            let product = source[feature] * scale
            destination[feature] = product + shift
        }
        labelsOut[row] = labels[index]
    }
}

/// Copies this part's share of the targets of the `count` examples named by `indices` (each `width`
/// floats in `targets`) into `out`, row after row: a regressor's batch of target values.
public func gatherTargetRows(
    _ targets: UnsafePointer<Float>, _ width: Int, _ indices: UnsafePointer<Int32>, _ count: Int,
    _ out: UnsafeMutablePointer<Float>, _ part: Int, _ parts: Int
) {
    let rows = partRange(count: count, granule: 1, part: part, parts: parts)
    for row in rows {
        (out + row * width).update(from: targets + Int(indices[row]) * width, count: width)
    }
}
