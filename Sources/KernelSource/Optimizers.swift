#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif
import KernelInterface

// The optimizers follow torch.optim's single-tensor code (torch/optim/sgd.py `_single_tensor_sgd`,
// torch/optim/adam.py `_single_tensor_adam`; AdamW is Adam with decoupled weight decay). As in PyTorch,
// scalar coefficients are Python floats (Double) rounded to Float once, and the elementwise work is in
// Float. `x.add_(y, alpha=a)` is x + a*y, which ATen's vectorized CPU kernel computes as one fused
// multiply-add; the same is done here.

/// One SGD step over this part's share of the parameters:
///   g = grad + weightDecay * p
///   buf = g on the first step, else momentum * buf + (1 - dampening) * g   (only when momentum != 0)
///   g = nesterov ? g + momentum * buf : buf                                 (only when momentum != 0)
///   p = p - lr * g
public func sgdStep(
    _ params: UnsafeMutablePointer<Float>, _ grads: UnsafePointer<Float>,
    _ momentumBuffer: UnsafeMutablePointer<Float>?, _ count: Int, _ lr: Double, _ momentum: Double,
    _ dampening: Double, _ nesterov: Bool, _ weightDecay: Double, _ isFirstStep: Bool,
    _ part: Int, _ parts: Int
) {
    let range = partRange(count: count, granule: 16, part: part, parts: parts)
    let decay = Float(weightDecay)
    let negativeLR = Float(-lr)
    let mu = Float(momentum)
    let keep = Float(1 - dampening)
    guard momentum != 0, let buffer = momentumBuffer else {
        sgdPlainStep(params, grads, range, decay, negativeLR)
        return
    }
    var i = range.lowerBound
    while i + 16 <= range.upperBound {
        var g = load16(grads + i)
        let p = load16(params + i)
        if weightDecay != 0 { g = g.addingProduct(decay, p) }
        let b = isFirstStep ? g : (load16(buffer + i) * mu).addingProduct(keep, g)
        store16(b, buffer + i)
        let step = nesterov ? g.addingProduct(mu, b) : b
        store16(p.addingProduct(negativeLR, step), params + i)
        i += 16
    }
    while i < range.upperBound {
        var g = grads[i]
        let p = params[i]
        if weightDecay != 0 { g = g.addingProduct(decay, p) }
        let b = isFirstStep ? g : (buffer[i] * mu).addingProduct(keep, g)
        buffer[i] = b
        let step = nesterov ? g.addingProduct(mu, b) : b
        params[i] = p.addingProduct(negativeLR, step)
        i += 1
    }
}

private func sgdPlainStep(
    _ params: UnsafeMutablePointer<Float>, _ grads: UnsafePointer<Float>, _ range: Range<Int>,
    _ decay: Float, _ negativeLR: Float
) {
    var i = range.lowerBound
    while i + 16 <= range.upperBound {
        let p = load16(params + i)
        let g = load16(grads + i).addingProduct(decay, p)
        store16(p.addingProduct(negativeLR, g), params + i)
        i += 16
    }
    while i < range.upperBound {
        let p = params[i]
        let g = grads[i].addingProduct(decay, p)
        params[i] = p.addingProduct(negativeLR, g)
        i += 1
    }
}

/// One Adam (decoupled = false) or AdamW (decoupled = true) step at step t (1-based):
///   adam:  g = grad + weightDecay * p        adamw: p = p * (1 - lr * weightDecay)
///   m = m.lerp(g, 1 - beta1)                 (ATen: m + w (g - m) when w < 0.5, else g - (g - m)(1 - w))
///   v = v * beta2 + (1 - beta2) * g * g
///   stepSize = lr / (1 - beta1^t);  denom = sqrt(v) / sqrt(1 - beta2^t) + eps
///   p = p - stepSize * (m / denom)
/// The division by sqrt(1 - beta2^t) is a multiplication by its reciprocal (within an ulp of torch's
/// result): vector division and square root share one slow unit, and the step is bound by it.
/// A vector whose gradient (after coupled decay) and first moment are all zero (a ReLU unit that has not
/// fired for a while) skips both: m1 is then ±0, m1 / denom is m1 for any positive denom, and the
/// update is p + negativeStepSize * m1, the same bits. denom is positive when eps is and the bias
/// correction finite, and v1 is neither negative nor NaN; anything else takes the full path.
public func adamStep(
    _ params: UnsafeMutablePointer<Float>, _ grads: UnsafePointer<Float>,
    _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>, _ count: Int,
    _ lr: Double, _ beta1: Double, _ beta2: Double, _ eps: Double, _ weightDecay: Double,
    _ decoupled: Bool, _ step: Int, _ part: Int, _ parts: Int
) {
    let range = partRange(count: count, granule: 16, part: part, parts: parts)
    let t = Double(max(step, 1))
    let biasCorrection1 = 1 - pow(beta1, t)
    let biasCorrection2 = 1 - pow(beta2, t)
    let negativeStepSize = Float(-(lr / biasCorrection1))
    let inverseBiasCorrection2Sqrt = Float(1 / biasCorrection2.squareRoot())
    let epsilon = Float(eps)
    let weight = Float(1 - beta1)
    let lerpNear = abs(weight) < 0.5
    let lerpFar = Float(1 - Double(weight))
    let beta2f = Float(beta2)
    let oneMinusBeta2 = Float(1 - beta2)
    let decay = Float(weightDecay)
    let shrink = Float(1 - lr * weightDecay)
    let coupledDecay = weightDecay != 0 && !decoupled
    let decoupledDecay = weightDecay != 0 && decoupled
    let skipsIdle = epsilon > 0 && inverseBiasCorrection2Sqrt.isFinite

    var i = range.lowerBound
    while i + 16 <= range.upperBound {
        var p = load16(params + i)
        var g = load16(grads + i)
        if coupledDecay { g = g.addingProduct(decay, p) }
        if decoupledDecay { p = p * shrink }
        let m0 = load16(m + i)
        let difference = g - m0
        let m1 = lerpNear ? m0.addingProduct(weight, difference) : g.addingProduct(-lerpFar, difference)
        let v1 = load16(v + i) * beta2f + (oneMinusBeta2 * g) * g
        store16(m1, m + i)
        store16(v1, v + i)
        if skipsIdle && !any((g .!= 0) .| (m0 .!= 0)) && all(v1 .>= 0) {
            store16(p + negativeStepSize * m1, params + i)
            i += 16
            continue
        }
        let denom = v1.squareRoot() * inverseBiasCorrection2Sqrt + epsilon
        store16(p + negativeStepSize * (m1 / denom), params + i)
        i += 16
    }
    while i < range.upperBound {
        var p = params[i]
        var g = grads[i]
        if coupledDecay { g = g.addingProduct(decay, p) }
        if decoupledDecay { p = p * shrink }
        let m0 = m[i]
        let difference = g - m0
        let m1 = lerpNear ? m0.addingProduct(weight, difference) : g.addingProduct(-lerpFar, difference)
        let v1 = v[i] * beta2f + (oneMinusBeta2 * g) * g
        let denom = v1.squareRoot() * inverseBiasCorrection2Sqrt + epsilon
        m[i] = m1
        v[i] = v1
        params[i] = p + negativeStepSize * (m1 / denom)
        i += 1
    }
}
