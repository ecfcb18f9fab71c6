import SpecParser

/// What every step of a plan knows about itself: the slices it reads and writes (for liveness,
/// verification, the tables and the graph), its FLOPs, how many threads share it, and where in the
/// spec it comes from. Each kernel kind is one named struct conforming to this (Kernels/*.swift).
public protocol KernelStep: Codable, Equatable, Sendable {
    /// The slices the kernel reads.
    var reads: [Slice] { get }
    /// The slices the kernel writes.
    var writes: [Slice] { get }
    var flops: Int { get }
    /// Threads that share the kernel's work (its parts); the planner fixes it.
    var threads: Int { get }
    /// A short name for tables: the kernel kind and the layer it belongs to.
    var label: String { get }
    var source: SourceLocation? { get }
    /// The matrix product the kernel computes, if it is one.
    var matmul: MatmulShape? { get }
    /// Whether the kernel runs after the loss (backward and optimizer kernels).
    var isBackward: Bool { get }
    /// The optional passes that chose this kernel's variant (`PlanPass` names), if any.
    var passes: [String] { get }
    /// How a kernel that is not a plain matrix product computes (`mlpc plan`'s tile column), if it says.
    var algorithm: String? { get }
    /// The same kernel with every slice transformed (arena offsets, the prefetch's second batch pair).
    func mapSlices(_ f: (Slice) -> Slice) -> Self
}

extension KernelStep {
    public var matmul: MatmulShape? { nil }
    public var passes: [String] { [] }
    public var algorithm: String? { nil }
    public var isBackward: Bool { false }
    public var source: SourceLocation? { nil }
}

/// One step of the plan: the list of kernel kinds. A closed set, and the only place that lists them;
/// each case carries its kind's named struct, which owns its behaviour.
public enum Kernel: Equatable, Sendable {
    case gatherBatch(GatherBatch)
    case linearForward(LinearForward)
    case activationForward(ActivationForward)
    case dropoutForward(DropoutForward)
    case softmaxCrossEntropy(SoftmaxCrossEntropy)
    case meanSquaredError(MeanSquaredError)
    case regressionLoss(RegressionLoss)
    case activationBackward(ActivationBackward)
    case dropoutBackward(DropoutBackward)
    case linearBackwardWeights(LinearBackwardWeights)
    case linearBackwardInput(LinearBackwardInput)
    case optimizerStep(OptimizerStep)
    case classify(Classify)
    case conv2dForward(Conv2dForward)
    case conv2dBackwardWeights(Conv2dBackwardWeights)
    case conv2dBackwardInput(Conv2dBackwardInput)
    case pool2dForward(Pool2dForward)
    case pool2dBackward(Pool2dBackward)
    case batchNormForward(BatchNormForward)
    case batchNormBackward(BatchNormBackward)
    case batchNormFold(BatchNormFold)

    /// The kernel's named value.
    public var step: any KernelStep {
        switch self {
        case .gatherBatch(let k): return k
        case .linearForward(let k): return k
        case .activationForward(let k): return k
        case .dropoutForward(let k): return k
        case .softmaxCrossEntropy(let k): return k
        case .meanSquaredError(let k): return k
        case .regressionLoss(let k): return k
        case .activationBackward(let k): return k
        case .dropoutBackward(let k): return k
        case .linearBackwardWeights(let k): return k
        case .linearBackwardInput(let k): return k
        case .optimizerStep(let k): return k
        case .classify(let k): return k
        case .conv2dForward(let k): return k
        case .conv2dBackwardWeights(let k): return k
        case .conv2dBackwardInput(let k): return k
        case .pool2dForward(let k): return k
        case .pool2dBackward(let k): return k
        case .batchNormForward(let k): return k
        case .batchNormBackward(let k): return k
        case .batchNormFold(let k): return k
        }
    }

    public func mapSlices(_ f: (Slice) -> Slice) -> Kernel {
        switch self {
        case .gatherBatch(let k): return .gatherBatch(k.mapSlices(f))
        case .linearForward(let k): return .linearForward(k.mapSlices(f))
        case .activationForward(let k): return .activationForward(k.mapSlices(f))
        case .dropoutForward(let k): return .dropoutForward(k.mapSlices(f))
        case .softmaxCrossEntropy(let k): return .softmaxCrossEntropy(k.mapSlices(f))
        case .meanSquaredError(let k): return .meanSquaredError(k.mapSlices(f))
        case .regressionLoss(let k): return .regressionLoss(k.mapSlices(f))
        case .activationBackward(let k): return .activationBackward(k.mapSlices(f))
        case .dropoutBackward(let k): return .dropoutBackward(k.mapSlices(f))
        case .linearBackwardWeights(let k): return .linearBackwardWeights(k.mapSlices(f))
        case .linearBackwardInput(let k): return .linearBackwardInput(k.mapSlices(f))
        case .optimizerStep(let k): return .optimizerStep(k.mapSlices(f))
        case .classify(let k): return .classify(k.mapSlices(f))
        case .conv2dForward(let k): return .conv2dForward(k.mapSlices(f))
        case .conv2dBackwardWeights(let k): return .conv2dBackwardWeights(k.mapSlices(f))
        case .conv2dBackwardInput(let k): return .conv2dBackwardInput(k.mapSlices(f))
        case .pool2dForward(let k): return .pool2dForward(k.mapSlices(f))
        case .pool2dBackward(let k): return .pool2dBackward(k.mapSlices(f))
        case .batchNormForward(let k): return .batchNormForward(k.mapSlices(f))
        case .batchNormBackward(let k): return .batchNormBackward(k.mapSlices(f))
        case .batchNormFold(let k): return .batchNormFold(k.mapSlices(f))
        }
    }

    public var reads: [Slice] { step.reads }
    public var writes: [Slice] { step.writes }
    public var flops: Int { step.flops }
    public var threads: Int { step.threads }
    public var label: String { step.label }
    public var source: SourceLocation? { step.source }
    public var matmul: MatmulShape? { step.matmul }
    public var isBackward: Bool { step.isBackward }
}

/// In JSON a kernel is an object with one key, its kind, whose value is the kind's struct:
/// `{"linearForward": {"layer": "fc1", ...}}`.
extension Kernel: Codable {
    private enum Kind: String, CodingKey, CaseIterable {
        case gatherBatch, linearForward, activationForward, dropoutForward, softmaxCrossEntropy, meanSquaredError,
            regressionLoss, activationBackward, dropoutBackward, linearBackwardWeights, linearBackwardInput, optimizerStep, classify, conv2dForward, conv2dBackwardWeights, conv2dBackwardInput, pool2dForward, pool2dBackward, batchNormForward, batchNormBackward, batchNormFold
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: Kind.self)
        guard container.allKeys.count == 1, let kind = container.allKeys.first else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "a kernel is an object with exactly one key, its kind"))
        }
        switch kind {
        case .gatherBatch: self = .gatherBatch(try container.decode(GatherBatch.self, forKey: kind))
        case .linearForward: self = .linearForward(try container.decode(LinearForward.self, forKey: kind))
        case .activationForward: self = .activationForward(try container.decode(ActivationForward.self, forKey: kind))
        case .dropoutForward: self = .dropoutForward(try container.decode(DropoutForward.self, forKey: kind))
        case .softmaxCrossEntropy: self = .softmaxCrossEntropy(try container.decode(SoftmaxCrossEntropy.self, forKey: kind))
        case .meanSquaredError: self = .meanSquaredError(try container.decode(MeanSquaredError.self, forKey: kind))
        case .regressionLoss: self = .regressionLoss(try container.decode(RegressionLoss.self, forKey: kind))
        case .activationBackward: self = .activationBackward(try container.decode(ActivationBackward.self, forKey: kind))
        case .dropoutBackward: self = .dropoutBackward(try container.decode(DropoutBackward.self, forKey: kind))
        case .linearBackwardWeights: self = .linearBackwardWeights(try container.decode(LinearBackwardWeights.self, forKey: kind))
        case .linearBackwardInput: self = .linearBackwardInput(try container.decode(LinearBackwardInput.self, forKey: kind))
        case .optimizerStep: self = .optimizerStep(try container.decode(OptimizerStep.self, forKey: kind))
        case .classify: self = .classify(try container.decode(Classify.self, forKey: kind))
        case .conv2dForward: self = .conv2dForward(try container.decode(Conv2dForward.self, forKey: kind))
        case .conv2dBackwardWeights: self = .conv2dBackwardWeights(try container.decode(Conv2dBackwardWeights.self, forKey: kind))
        case .conv2dBackwardInput: self = .conv2dBackwardInput(try container.decode(Conv2dBackwardInput.self, forKey: kind))
        case .pool2dForward: self = .pool2dForward(try container.decode(Pool2dForward.self, forKey: kind))
        case .pool2dBackward: self = .pool2dBackward(try container.decode(Pool2dBackward.self, forKey: kind))
        case .batchNormForward: self = .batchNormForward(try container.decode(BatchNormForward.self, forKey: kind))
        case .batchNormBackward: self = .batchNormBackward(try container.decode(BatchNormBackward.self, forKey: kind))
        case .batchNormFold: self = .batchNormFold(try container.decode(BatchNormFold.self, forKey: kind))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: Kind.self)
        switch self {
        case .gatherBatch(let k): try container.encode(k, forKey: .gatherBatch)
        case .linearForward(let k): try container.encode(k, forKey: .linearForward)
        case .activationForward(let k): try container.encode(k, forKey: .activationForward)
        case .dropoutForward(let k): try container.encode(k, forKey: .dropoutForward)
        case .softmaxCrossEntropy(let k): try container.encode(k, forKey: .softmaxCrossEntropy)
        case .meanSquaredError(let k): try container.encode(k, forKey: .meanSquaredError)
        case .regressionLoss(let k): try container.encode(k, forKey: .regressionLoss)
        case .activationBackward(let k): try container.encode(k, forKey: .activationBackward)
        case .dropoutBackward(let k): try container.encode(k, forKey: .dropoutBackward)
        case .linearBackwardWeights(let k): try container.encode(k, forKey: .linearBackwardWeights)
        case .linearBackwardInput(let k): try container.encode(k, forKey: .linearBackwardInput)
        case .optimizerStep(let k): try container.encode(k, forKey: .optimizerStep)
        case .classify(let k): try container.encode(k, forKey: .classify)
        case .conv2dForward(let k): try container.encode(k, forKey: .conv2dForward)
        case .conv2dBackwardWeights(let k): try container.encode(k, forKey: .conv2dBackwardWeights)
        case .conv2dBackwardInput(let k): try container.encode(k, forKey: .conv2dBackwardInput)
        case .pool2dForward(let k): try container.encode(k, forKey: .pool2dForward)
        case .pool2dBackward(let k): try container.encode(k, forKey: .pool2dBackward)
        case .batchNormForward(let k): try container.encode(k, forKey: .batchNormForward)
        case .batchNormBackward(let k): try container.encode(k, forKey: .batchNormBackward)
        case .batchNormFold(let k): try container.encode(k, forKey: .batchNormFold)
        }
    }
}
