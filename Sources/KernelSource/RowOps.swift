#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif
import KernelInterface

/// The index of each row's largest value; the first on ties, and NaN never wins.
public func argmaxRows(_ logits: UnsafePointer<Float>, _ m: Int, _ n: Int, _ out: UnsafeMutablePointer<Int32>) {
    for i in 0..<m {
        let row = logits + i * n
        var best = 0
        for j in 1..<max(n, 1) where row[j] > row[best] || row[best].isNaN { best = j }
        out[i] = Int32(truncatingIfNeeded: best)
    }
}

/// Softmax of each row, stable (the row maximum is subtracted first). probabilities may alias logits.
public func softmaxRows(_ logits: UnsafePointer<Float>, _ m: Int, _ n: Int, _ probabilities: UnsafeMutablePointer<Float>) {
    guard n > 0 else { return }
    for i in 0..<m {
        let row = logits + i * n
        let outRow = probabilities + i * n
        var maximum = row[0]
        for j in 1..<n where row[j] > maximum { maximum = row[j] }
        var sum: Float = 0
        for j in 0..<n {
            let e = expf(row[j] - maximum)
            outRow[j] = e
            sum += e
        }
        let inverse = 1 / sum
        for j in 0..<n { outRow[j] *= inverse }
    }
}
