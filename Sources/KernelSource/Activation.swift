#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif
import KernelInterface

// One definition of every activation and derivative, per element. The vector forms apply the same
// per-element operations (so a vector lane and a scalar tail give the same bits), and the matrix
// product epilogues call the vector forms, so fused and stand-alone activations agree exactly.

private let sqrtHalf: Float = 0.70710678118654752440
private let inverseSqrtTwoPi: Float = 0.39894228040143267794
private let sqrtTwoOverPi: Float = 0.79788456080286535588
private let geluTanhCubic: Float = 0.044715

@inline(__always)
func activate(_ x: Float, _ code: ActivationCode, _ slope: Float) -> Float {
    switch code {
    case .identity: return x
    case .relu: return x > 0 ? x : 0
    case .leakyRelu: return x > 0 ? x : slope * x
    case .sigmoid: return 1 / (1 + expf(-x))
    case .tanh: return tanhf(x)
    case .geluErf: return 0.5 * x * (1 + erff(x * sqrtHalf))
    case .geluTanh:
        let u = sqrtTwoOverPi * (x + geluTanhCubic * x * x * x)
        return 0.5 * x * (1 + tanhf(u))
    }
}

/// The derivative of the activation at one element, from its output y (identity, relu, leaky relu,
/// sigmoid, tanh) or its preactivation x (GELU variants).
@inline(__always)
func activationDerivative(output y: Float, preact x: Float, _ code: ActivationCode, _ slope: Float) -> Float {
    switch code {
    case .identity: return 1
    case .relu: return y > 0 ? 1 : 0
    case .leakyRelu: return y > 0 ? 1 : slope
    case .sigmoid: return y * (1 - y)
    case .tanh: return 1 - y * y
    case .geluErf:
        return 0.5 * (1 + erff(x * sqrtHalf)) + x * inverseSqrtTwoPi * expf(-0.5 * x * x)
    case .geluTanh:
        let x2 = x * x
        let t = tanhf(sqrtTwoOverPi * (x + geluTanhCubic * x2 * x))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * sqrtTwoOverPi * (1 + 3 * geluTanhCubic * x2)
    }
}

@inline(__always)
func activate16(_ x: SIMD16<Float>, _ code: ActivationCode, _ slope: Float) -> SIMD16<Float> {
    switch code {
    case .identity: return x
    case .relu: return x.replacing(with: 0, where: .!(x .> 0))
    case .leakyRelu: return x.replacing(with: x * slope, where: .!(x .> 0))
    case .sigmoid, .tanh, .geluErf, .geluTanh:
        var r = SIMD16<Float>()
        for i in 0..<16 { r[i] = activate(x[i], code, slope) }
        return r
    }
}

@inline(__always)
func activationDerivative16(output y: SIMD16<Float>, preact x: SIMD16<Float>, _ code: ActivationCode, _ slope: Float) -> SIMD16<Float> {
    switch code {
    case .identity: return SIMD16(repeating: 1)
    case .relu: return SIMD16<Float>(repeating: 0).replacing(with: 1, where: y .> 0)
    case .leakyRelu: return SIMD16<Float>(repeating: slope).replacing(with: 1, where: y .> 0)
    case .sigmoid: return y * (1 - y)
    case .tanh: return 1 - y * y
    case .geluErf, .geluTanh:
        var r = SIMD16<Float>()
        for i in 0..<16 { r[i] = activationDerivative(output: 0, preact: x[i], code, slope) }
        return r
    }
}

public func activationForward(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int,
    _ code: ActivationCode, _ slope: Float, _ part: Int, _ parts: Int
) {
    let range = partRange(count: count, granule: 16, part: part, parts: parts)
    var i = range.lowerBound
    while i + 16 <= range.upperBound {
        store16(activate16(load16(x + i), code, slope), y + i)
        i += 16
    }
    while i < range.upperBound {
        y[i] = activate(x[i], code, slope)
        i += 1
    }
}

public func activationBackward(
    _ dy: UnsafePointer<Float>, _ preact: UnsafePointer<Float>?, _ output: UnsafePointer<Float>?,
    _ dx: UnsafeMutablePointer<Float>, _ count: Int, _ code: ActivationCode, _ slope: Float,
    _ part: Int, _ parts: Int
) {
    let range = partRange(count: count, granule: 16, part: part, parts: parts)
    // The unused input is read in place of the missing one: derivatives ignore it, and this keeps
    // optionals out of the loop.
    guard let source = code.derivativeNeedsPreactivation ? (preact ?? output) : (output ?? preact) else {
        preconditionFailure("activationBackward needs the \(code.derivativeNeedsPreactivation ? "preactivation" : "output") of \(code)")
    }
    var i = range.lowerBound
    while i + 16 <= range.upperBound {
        let s = load16(source + i)
        store16(load16(dy + i) * activationDerivative16(output: s, preact: s, code, slope), dx + i)
        i += 16
    }
    while i < range.upperBound {
        dx[i] = dy[i] * activationDerivative(output: source[i], preact: source[i], code, slope)
        i += 1
    }
}
