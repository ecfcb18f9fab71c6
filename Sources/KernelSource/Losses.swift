#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif
import KernelInterface

/// Mean softmax cross-entropy over m rows of n logits, with the gradient of that mean.
/// Per row: one pass keeps a running maximum and a running sum of exp(logit - maximum) (rescaled when
/// the maximum grows), which gives log-sum-exp without overflow; a second pass writes the gradient.
public func softmaxCrossEntropy(
    _ logits: UnsafePointer<Float>, _ labels: UnsafePointer<Int32>, _ m: Int, _ n: Int,
    _ dlogits: UnsafeMutablePointer<Float>, _ rowLoss: UnsafeMutablePointer<Float>
) -> Float {
    guard m > 0, n > 0 else { return 0 }
    let inverseM = 1 / Float(m)
    for i in 0..<m {
        let row = logits + i * n
        var maximum = row[0]
        var sum: Float = 1
        for j in 1..<n {
            let v = row[j]
            if v > maximum {
                sum = sum * expf(maximum - v) + 1
                maximum = v
            } else {
                sum += expf(v - maximum)
            }
        }
        let logSum = logf(sum)
        let label = Int(labels[i])
        let labelValid = label >= 0 && label < n
        // (maximum - logit) first: both may be large, and adding log(sum) to the small difference keeps
        // its precision (adding it to the maximum would round to the maximum's ulp).
        rowLoss[i] = labelValid ? logSum + (maximum - row[label]) : .nan
        let gradRow = dlogits + i * n
        let inverseSum = 1 / sum
        for j in 0..<n {
            let probability = expf(row[j] - maximum) * inverseSum
            gradRow[j] = (probability - (j == label ? 1 : 0)) * inverseM
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

/// A regressor's loss between outputs and targets (m rows of n values), mean over all m * n values,
/// with its gradient: `kind` 0 is PyTorch's MSELoss, 1 L1Loss (the gradient of |0| is 0, as in
/// PyTorch), 2 HuberLoss(delta) (0.5 d^2 for |d| <= delta, delta (|d| - delta / 2) beyond).
/// The sum runs in Double, row by row, so the result does not depend on the kernel set.
public func regressionLoss(
    _ kind: Int, _ delta: Float, _ output: UnsafePointer<Float>, _ targets: UnsafePointer<Float>, _ m: Int, _ n: Int,
    _ doutput: UnsafeMutablePointer<Float>
) -> Float {
    guard m > 0, n > 0 else { return 0 }
    let count = m * n
    let inverseCount = 1 / Float(count)
    var total: Double = 0
    for i in 0..<count {
        let d = output[i] - targets[i]
        let magnitude = abs(d)
        let sign: Float = d > 0 ? 1 : (d < 0 ? -1 : 0)
        switch kind {
        case 0:
            total += Double(d * d)
            doutput[i] = 2 * inverseCount * d
        case 1:
            total += Double(magnitude)
            doutput[i] = inverseCount * sign
        default:
            if magnitude <= delta {
                total += Double(0.5 * d * d)
                doutput[i] = inverseCount * d
            } else {
                total += Double(delta * (magnitude - 0.5 * delta))
                doutput[i] = inverseCount * delta * sign
            }
        }
    }
    return Float(total / Double(count))
}
