#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif
import KernelInterface

/// Mean softmax cross-entropy over m rows of n logits, with the gradient of that mean.
/// Per row: the maximum, then exp(logit - maximum) for every logit (kept in the gradient row) and their
/// sum give log-sum-exp without overflow; a last pass scales the kept exponentials into the gradient.
public func softmaxCrossEntropy(
    _ logits: UnsafePointer<Float>, _ labels: UnsafePointer<Int32>, _ m: Int, _ n: Int,
    _ dlogits: UnsafeMutablePointer<Float>, _ rowLoss: UnsafeMutablePointer<Float>
) -> Float {
    guard m > 0, n > 0 else { return 0 }
    let inverseM = 1 / Float(m)
    for i in 0..<m {
        let row = logits + i * n
        let gradRow = dlogits + i * n
        let label = Int(labels[i])
        let labelValid = label >= 0 && label < n
        let labelLogit = labelValid ? row[label] : .nan
        // Two passes (the maximum, then one exponential per logit kept in the gradient row) instead of
        // an online maximum: half the exponentials, and the sum adds terms that are all at most 1.
        var maximum = row[0]
        for j in 1..<n where !(row[j] <= maximum) { maximum = row[j] }
        var sum: Float = 0
        for j in 0..<n {
            let e = expf(row[j] - maximum)
            gradRow[j] = e
            sum += e
        }
        // (maximum - logit) first: both may be large, and adding log(sum) to the small difference keeps
        // its precision (adding it to the maximum would round to the maximum's ulp).
        rowLoss[i] = logf(sum) + (maximum - labelLogit)
        let inverseSum = 1 / sum
        for j in 0..<n {
            gradRow[j] = (gradRow[j] * inverseSum - (j == label ? 1 : 0)) * inverseM
        }
    }
    var total: Double = 0
    for i in 0..<m { total += Double(rowLoss[i]) }
    return Float(total / Double(m))
}

/// PyTorch's MSELoss(reduction='mean') between the outputs and one-hot targets of the labels.
/// A label outside 0..<n gives a NaN loss.
public func meanSquaredError(
    _ output: UnsafePointer<Float>, _ labels: UnsafePointer<Int32>, _ m: Int, _ n: Int,
    _ doutput: UnsafeMutablePointer<Float>
) -> Float {
    guard m > 0, n > 0 else { return 0 }
    let count = m * n
    let gradScale = 2 / Float(count)
    var total: Double = 0
    var invalidLabel = false
    for i in 0..<m {
        let label = Int(labels[i])
        invalidLabel = invalidLabel || label < 0 || label >= n
        for j in 0..<n {
            let difference = output[i * n + j] - (j == label ? 1 : 0)
            total += Double(difference * difference)
            doutput[i * n + j] = gradScale * difference
        }
    }
    return invalidLabel ? .nan : Float(total / Double(count))
}
