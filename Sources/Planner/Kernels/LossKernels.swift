import SpecParser

/// Mean cross-entropy of softmax(logits) against class labels, and its gradient (softmax - onehot)/rows,
/// in one pass.
public struct SoftmaxCrossEntropy: KernelStep {
    public var logits: Slice
    public var labels: Slice
    public var gradient: Slice
    /// One float of scratch per row.
    public var rowLoss: Slice
    public var location: SourceLocation

    public init(logits: Slice, labels: Slice, gradient: Slice, rowLoss: Slice, location: SourceLocation) {
        self.logits = logits
        self.labels = labels
        self.gradient = gradient
        self.rowLoss = rowLoss
        self.location = location
    }

    public var reads: [Slice] { [logits, labels] }
    public var writes: [Slice] { [gradient, rowLoss] }
    public var flops: Int { 5 * logits.elements }
    public var threads: Int { 1 }
    public var label: String { "softmax_cross_entropy+grad" }
    public var source: SourceLocation? { location }

    public func mapSlices(_ f: (Slice) -> Slice) -> SoftmaxCrossEntropy {
        SoftmaxCrossEntropy(logits: f(logits), labels: f(labels), gradient: f(gradient), rowLoss: f(rowLoss), location: location)
    }
}

/// Mean squared error of the outputs against one-hot labels, and its gradient.
public struct MeanSquaredError: KernelStep {
    public var output: Slice
    public var labels: Slice
    public var gradient: Slice
    public var location: SourceLocation

    public init(output: Slice, labels: Slice, gradient: Slice, location: SourceLocation) {
        self.output = output
        self.labels = labels
        self.gradient = gradient
        self.location = location
    }

    public var reads: [Slice] { [output, labels] }
    public var writes: [Slice] { [gradient] }
    public var flops: Int { 4 * output.elements }
    public var threads: Int { 1 }
    public var label: String { "mse+grad" }
    public var source: SourceLocation? { location }

    public func mapSlices(_ f: (Slice) -> Slice) -> MeanSquaredError {
        MeanSquaredError(output: f(output), labels: f(labels), gradient: f(gradient), location: location)
    }
}

/// A regressor's loss (mse, l1 or huber, the mean over every output value) against the gathered
/// target values, and its gradient.
public struct RegressionLoss: KernelStep {
    public var kind: LossKind
    /// Huber's delta (PyTorch's default, 1).
    public var delta: Float
    public var output: Slice
    public var targets: Slice
    public var gradient: Slice
    public var location: SourceLocation

    public init(kind: LossKind, delta: Float, output: Slice, targets: Slice, gradient: Slice, location: SourceLocation) {
        self.kind = kind
        self.delta = delta
        self.output = output
        self.targets = targets
        self.gradient = gradient
        self.location = location
    }

    /// The kernel's code for the kind: 0 mse, 1 l1, 2 huber.
    public var kindCode: Int {
        switch kind {
        case .l1: return 1
        case .huber: return 2
        case .mse, .crossEntropy: return 0
        }
    }

    public var reads: [Slice] { [output, targets] }
    public var writes: [Slice] { [gradient] }
    public var flops: Int { 4 * output.elements }
    public var threads: Int { 1 }
    public var label: String { "\(kind.rawValue)+grad" }
    public var source: SourceLocation? { location }

    public func mapSlices(_ f: (Slice) -> Slice) -> RegressionLoss {
        RegressionLoss(kind: kind, delta: delta, output: f(output), targets: f(targets), gradient: f(gradient), location: location)
    }
}
