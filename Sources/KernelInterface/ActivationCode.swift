/// The elementwise activations a kernel can apply. Leaky ReLU's slope travels beside the code as a
/// separate `negativeSlope` argument so that the code stays a plain, switchable enum.
public enum ActivationCode: UInt8, Codable, Equatable, Hashable, Sendable, CaseIterable {
    case identity
    case relu
    /// x > 0 ? x : negativeSlope * x
    case leakyRelu
    case sigmoid
    case tanh
    /// 0.5 x (1 + erf(x / sqrt 2)), PyTorch's GELU(approximate='none').
    case geluErf
    /// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), PyTorch's GELU(approximate='tanh').
    case geluTanh

    /// Whether the derivative is computed from the preactivation (GELU) rather than from the
    /// activation's output (all others). The planner keeps the preactivation alive only when true.
    public var derivativeNeedsPreactivation: Bool {
        switch self {
        case .geluErf, .geluTanh: return true
        case .identity, .relu, .leakyRelu, .sigmoid, .tanh: return false
        }
    }
}
