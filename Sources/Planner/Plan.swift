import KernelInterface
import SpecParser

/// Everything the runtime will do for a spec on a target, as a plain value: the parameter tensors, the
/// buffer table of the one arena, and the kernels of a training step and of evaluation, in order.
/// `mlpc plan` prints it; `--format json` encodes it; the runtime executes it.
public struct Plan: Codable, Equatable, Sendable {
    public var specName: String
    public var target: Target
    /// Rows of a training step and of an evaluation step; a partial last batch runs with fewer rows.
    public var batchSize: Int
    public var evalBatchSize: Int
    /// Floats per sample of the input (the product of the input shape).
    public var inputFeatures: Int
    public var inputShape: [Int]
    /// Number of classes the loss and evaluation use (the final layer's width).
    public var classes: Int
    public var layers: [LayerSummary]
    public var parameters: [ParameterTensor]
    /// Floats in the parameter block (the tensors, each padded to 16 floats); gradients and every optimizer
    /// moment have the same length and layout.
    public var parameterBlockFloats: Int
    public var buffers: [Buffer]
    public var trainKernels: [Kernel]
    public var evalKernels: [Kernel]
    public var arenaBytes: Int
    public var optimizer: OptimizerSettings
    public var loss: LossKind
    public var fusions: [String]
    /// Whether, and during which kernels, the training step gathers the next batch ahead of time.
    public var batchPrefetch: BatchPrefetch? = nil
    /// The layer whose features the runtime may store live-first during an epoch, if any.
    public var liveFirstFeatures: LiveFirstFeatures? = nil
    /// The layer that absorbs the input normalization's shift, if any.
    public var shiftedInput: ShiftedInput? = nil

    /// FLOPs of one full training step (matrix products and elementwise work).
    public var trainFlopsPerStep: Int { trainKernels.reduce(0) { $0 + $1.flops } }
    public var evalFlopsPerStep: Int { evalKernels.reduce(0) { $0 + $1.flops } }
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    public func buffer(named name: String) -> Buffer? { buffers.first { $0.name == name } }
}

/// A row of the model summary: what `mlpc check` prints.
public struct LayerSummary: Codable, Equatable, Sendable {
    public var name: String
    public var kind: String
    /// Per-sample output shape.
    public var outputShape: [Int]
    public var parameters: Int
    public var location: SourceLocation
}

/// One parameter tensor, named as PyTorch names it (`fc1.weight`), with PyTorch's shape ([out, in]).
/// mlpc stores a weight in panels of 32 output features (`WeightPanels` in KernelInterface): the layout
/// the forward product reads in place, and one in which the features a thread owns are contiguous.
public struct ParameterTensor: Codable, Equatable, Sendable {
    public enum Role: String, Codable, Sendable { case weight, bias }
    public var name: String
    public var layer: String
    public var role: Role
    /// Shape as PyTorch reports it: weight [out, in], bias [out].
    public var shape: [Int]
    /// Offset in floats inside the parameter block (also inside the gradient and moment blocks).
    public var offset: Int
    /// Elements, as PyTorch counts them.
    public var count: Int
    /// Floats the tensor takes in the block (a weight's last panel is padded with zeros).
    public var storedCount: Int
    public var fanIn: Int
    public var fanOut: Int
    public var initialization: Initialization
    public var location: SourceLocation

    /// Where PyTorch's element `index` (row-major over `shape`) is, counted from `offset`.
    public func storedIndex(_ index: Int) -> Int {
        switch role {
        case .bias:
            return index
        case .weight:
            let inFeatures = shape[1]
            return WeightPanels.offset(output: index / inFeatures, input: index % inFeatures, inFeatures: inFeatures)
        }
    }
}

public struct OptimizerSettings: Codable, Equatable, Sendable {
    public var kind: OptimizerKind
    public var lr: Double
    public var momentum: Double
    public var dampening: Double
    public var nesterov: Bool
    public var beta1: Double
    public var beta2: Double
    public var eps: Double
    public var weightDecay: Double
    /// Moment blocks the optimizer keeps (sgd: 0 or 1, adam/adamw: 2).
    public var stateBlocks: Int
}

public enum ElementType: String, Codable, Sendable {
    case float32, int32
}

/// A named region of the arena. Persistent buffers (parameters, gradients, optimizer state, workspace)
/// live for the whole run; the others live from the kernel that writes them first to the last kernel that
/// reads them, and buffers whose live ranges do not overlap may share bytes.
public struct Buffer: Codable, Equatable, Sendable {
    public enum Role: String, Codable, Sendable {
        case parameters, gradients, optimizerState, workspace, input, labels, activation, activationGradient,
            preactivation, mask, lossScratch, predictions
    }
    public var name: String
    public var role: Role
    public var elementType: ElementType
    /// Shape at the plan's batch size.
    public var shape: [Int]
    public var elements: Int
    public var bytes: Int { elements * 4 }
    /// Byte offset in the arena (64-byte aligned).
    public var offset: Int
    /// Index range over the combined timeline (train kernels, then eval kernels) in which the buffer is live;
    /// persistent buffers span the whole timeline.
    public var firstUse: Int
    public var lastUse: Int

    /// The whole buffer as a slice.
    public var slice: Slice { Slice(buffer: name, offset: offset, elements: elements, shape: shape) }
}

/// A view of a buffer that a kernel reads or writes. (Outside this module, `Planner.Slice`: the standard
/// library has a `Slice` too.)
public struct Slice: Codable, Equatable, Sendable, CustomStringConvertible {
    public var buffer: String
    /// Byte offset in the arena of the first element.
    public var offset: Int
    public var elements: Int
    public var shape: [Int]

    public init(buffer: String, offset: Int, elements: Int, shape: [Int]) {
        self.buffer = buffer
        self.offset = offset
        self.elements = elements
        self.shape = shape
    }

    public var description: String { "\(buffer)\(shape)" }
}

/// Which activation a fused epilogue applies (or whose derivative it applies).
public struct ActivationFunction: Codable, Equatable, Sendable {
    public var code: ActivationCode
    public var negativeSlope: Float

    public static let identity = ActivationFunction(code: .identity, negativeSlope: 0)

    public init(code: ActivationCode, negativeSlope: Float) {
        self.code = code
        self.negativeSlope = negativeSlope
    }

    public init(_ activation: Activation?) {
        switch activation {
        case nil: self = .identity
        case .relu?: self.init(code: .relu, negativeSlope: 0)
        case .leakyRelu(let slope)?: self.init(code: .leakyRelu, negativeSlope: Float(slope))
        case .sigmoid?: self.init(code: .sigmoid, negativeSlope: 0)
        case .tanh?: self.init(code: .tanh, negativeSlope: 0)
        case .gelu(let tanhApproximation)?:
            self.init(code: tanhApproximation ? .geluTanh : .geluErf, negativeSlope: 0)
        }
    }

    public var isIdentity: Bool { code == .identity }
    /// GELU's derivative needs the pre-activation; the others are computed from the output.
    public var needsPreactivation: Bool { code == .geluErf || code == .geluTanh }
}

/// How a matrix product is computed: its shape, the tile the planner chose, and how many threads share it.
public struct MatmulShape: Codable, Equatable, Sendable {
    public var m: Int
    public var n: Int
    public var k: Int
    public var tile: MatmulTile
    public var threads: Int
    public var flops: Int { 2 * m * n * k }
}

/// One step of the plan. A closed set: every switch over it lists all cases.
public enum Kernel: Codable, Equatable, Sendable {
    /// Copies a batch of uint8 images into `input` normalized ((x/255 - mean)/std) and its labels into `labels`.
    case gatherBatch(input: Slice, labels: Slice, mean: Double, std: Double)
    /// output = act(input · weight + bias), with `preactivation` stored when the activation's derivative needs it.
    case linearForward(
        layer: String, input: Slice, weight: Slice, bias: Slice?, output: Slice, preactivation: Slice?,
        activation: ActivationFunction, matmul: MatmulShape, source: SourceLocation)
    case activationForward(
        layer: String, input: Slice, output: Slice, activation: ActivationFunction, source: SourceLocation)
    case dropoutForward(layer: String, input: Slice, output: Slice, mask: Slice, p: Double, source: SourceLocation)
    /// Mean cross-entropy of softmax(logits), and its gradient (softmax - onehot)/rows, in one pass.
    case softmaxCrossEntropy(logits: Slice, labels: Slice, gradient: Slice, rowLoss: Slice, source: SourceLocation)
    case meanSquaredError(output: Slice, labels: Slice, gradient: Slice, source: SourceLocation)
    /// gradient of an activation layer standing alone (or of a linear's activation nobody fused).
    case activationBackward(
        layer: String, outputGradient: Slice, preactivation: Slice?, output: Slice, inputGradient: Slice,
        activation: ActivationFunction, source: SourceLocation)
    case dropoutBackward(layer: String, outputGradient: Slice, mask: Slice, inputGradient: Slice, source: SourceLocation)
    /// weightGradient = inputᵀ · outputGradient and biasGradient = column sums, in one pass.
    case linearBackwardWeights(
        layer: String, input: Slice, outputGradient: Slice, weightGradient: Slice, biasGradient: Slice?,
        matmul: MatmulShape, source: SourceLocation)
    /// inputGradient = (outputGradient · weightᵀ) ⊙ act'(producer of the input), the derivative fused.
    case linearBackwardInput(
        layer: String, outputGradient: Slice, weight: Slice, inputGradient: Slice, producerActivation: ActivationFunction,
        producerOutput: Slice, producerPreactivation: Slice?, matmul: MatmulShape, source: SourceLocation)
    /// One update of every parameter: the blocks are contiguous, so this is one loop.
    case optimizerStep(parameters: Slice, gradients: Slice, state: [Slice], settings: OptimizerSettings, source: SourceLocation)
    /// predictions[row] = argmax of the row.
    case classify(logits: Slice, predictions: Slice)

    public var flops: Int {
        switch self {
        case .gatherBatch(let input, _, _, _): return 2 * input.elements
        case .linearForward(_, _, _, _, let output, _, _, let matmul, _): return matmul.flops + 2 * output.elements
        case .activationForward(_, let input, _, _, _): return input.elements
        case .dropoutForward(_, let input, _, _, _, _): return 2 * input.elements
        case .softmaxCrossEntropy(let logits, _, _, _, _): return 5 * logits.elements
        case .meanSquaredError(let output, _, _, _): return 4 * output.elements
        case .activationBackward(_, let gradient, _, _, _, _, _): return 2 * gradient.elements
        case .dropoutBackward(_, let gradient, _, _, _): return gradient.elements
        case .linearBackwardWeights(_, _, let gradient, _, let bias, let matmul, _):
            return matmul.flops + (bias == nil ? 0 : gradient.elements)
        case .linearBackwardInput(_, _, _, let inputGradient, let act, _, _, let matmul, _):
            return matmul.flops + (act.isIdentity ? 0 : 2 * inputGradient.elements)
        case .optimizerStep(let parameters, _, _, let settings, _):
            return parameters.elements * (settings.kind == .sgd ? 4 : 12)
        case .classify(let logits, _): return logits.elements
        }
    }

    /// The slices this kernel reads, then the ones it writes (for liveness, verification and the dot graph).
    public var reads: [Slice] {
        switch self {
        case .gatherBatch: return []
        case .linearForward(_, let input, let weight, let bias, _, _, _, _, _): return [input, weight] + (bias.map { [$0] } ?? [])
        case .activationForward(_, let input, _, _, _): return [input]
        case .dropoutForward(_, let input, _, _, _, _): return [input]
        case .softmaxCrossEntropy(let logits, let labels, _, _, _): return [logits, labels]
        case .meanSquaredError(let output, let labels, _, _): return [output, labels]
        case .activationBackward(_, let gradient, let pre, let output, _, _, _):
            return [gradient, output] + (pre.map { [$0] } ?? [])
        case .dropoutBackward(_, let gradient, let mask, _, _): return [gradient, mask]
        case .linearBackwardWeights(_, let input, let gradient, _, _, _, _): return [input, gradient]
        case .linearBackwardInput(_, let gradient, let weight, _, let act, let output, let pre, _, _):
            return [gradient, weight] + (act.isIdentity ? [] : [output]) + (pre.map { [$0] } ?? [])
        case .optimizerStep(let parameters, let gradients, let state, _, _): return [parameters, gradients] + state
        case .classify(let logits, _): return [logits]
        }
    }

    public var writes: [Slice] {
        switch self {
        case .gatherBatch(let input, let labels, _, _): return [input, labels]
        case .linearForward(_, _, _, _, let output, let pre, _, _, _): return [output] + (pre.map { [$0] } ?? [])
        case .activationForward(_, _, let output, _, _): return [output]
        case .dropoutForward(_, _, let output, let mask, _, _): return [output, mask]
        case .softmaxCrossEntropy(_, _, let gradient, let rowLoss, _): return [gradient, rowLoss]
        case .meanSquaredError(_, _, let gradient, _): return [gradient]
        case .activationBackward(_, _, _, _, let inputGradient, _, _): return [inputGradient]
        case .dropoutBackward(_, _, _, let inputGradient, _): return [inputGradient]
        case .linearBackwardWeights(_, _, _, let weightGradient, let bias, _, _):
            return [weightGradient] + (bias.map { [$0] } ?? [])
        case .linearBackwardInput(_, _, _, let inputGradient, _, _, _, _, _): return [inputGradient]
        case .optimizerStep(let parameters, _, let state, _, _): return [parameters] + state
        case .classify(_, let predictions): return [predictions]
        }
    }

    public var matmul: MatmulShape? {
        switch self {
        case .linearForward(_, _, _, _, _, _, _, let matmul, _),
            .linearBackwardWeights(_, _, _, _, _, let matmul, _),
            .linearBackwardInput(_, _, _, _, _, _, _, let matmul, _):
            return matmul
        case .gatherBatch, .activationForward, .dropoutForward, .softmaxCrossEntropy, .meanSquaredError,
            .activationBackward, .dropoutBackward, .optimizerStep, .classify:
            return nil
        }
    }

    public var source: SourceLocation? {
        switch self {
        case .linearForward(_, _, _, _, _, _, _, _, let source), .activationForward(_, _, _, _, let source),
            .dropoutForward(_, _, _, _, _, let source), .softmaxCrossEntropy(_, _, _, _, let source),
            .meanSquaredError(_, _, _, let source), .activationBackward(_, _, _, _, _, _, let source),
            .dropoutBackward(_, _, _, _, let source), .linearBackwardWeights(_, _, _, _, _, _, let source),
            .linearBackwardInput(_, _, _, _, _, _, _, _, let source), .optimizerStep(_, _, _, _, let source):
            return source
        case .gatherBatch, .classify:
            return nil
        }
    }

    /// A short name for tables: the kernel kind and the layer it belongs to.
    public var label: String {
        switch self {
        case .gatherBatch: return "gather_batch"
        case .linearForward(let layer, _, _, _, _, _, let act, _, _):
            return act.isIdentity ? "\(layer).linear" : "\(layer).linear+bias+\(act.code)"
        case .activationForward(let layer, _, _, let act, _): return "\(layer).\(act.code)"
        case .dropoutForward(let layer, _, _, _, _, _): return "\(layer).dropout"
        case .softmaxCrossEntropy: return "softmax_cross_entropy+grad"
        case .meanSquaredError: return "mse+grad"
        case .activationBackward(let layer, _, _, _, _, let act, _): return "\(layer).\(act.code)_backward"
        case .dropoutBackward(let layer, _, _, _, _): return "\(layer).dropout_backward"
        case .linearBackwardWeights(let layer, _, _, _, let bias, _, _):
            return bias == nil ? "\(layer).grad_weight" : "\(layer).grad_weight+bias"
        case .linearBackwardInput(let layer, _, _, _, let act, _, _, _, _):
            return act.isIdentity ? "\(layer).grad_input" : "\(layer).grad_input*\(act.code)'"
        case .optimizerStep(_, _, _, let settings, _): return "\(settings.kind.rawValue)_step"
        case .classify: return "argmax"
        }
    }
}

extension Plan {
    /// Batches of at least this many input values are gathered by every thread: a training batch of
    /// MNIST (50,176 values) takes about 10 microseconds on one core, a hand-off one or two.
    public static let parallelGatherElements = 8192
    /// A parameter block of at least this many floats is updated by every thread.
    public static let parallelOptimizerFloats = 65536

    /// How many threads run `kernel`: a matrix product as the planner split it, the batch gather and
    /// the optimizer step on every thread when they are large enough, the elementwise kernels on one.
    public func threads(of kernel: Kernel) -> Int {
        switch kernel {
        case .linearForward(_, _, _, _, _, _, _, let matmul, _),
            .linearBackwardWeights(_, _, _, _, _, let matmul, _),
            .linearBackwardInput(_, _, _, _, _, _, _, let matmul, _):
            return matmul.threads
        case .gatherBatch(let input, _, _, _):
            return input.elements >= Self.parallelGatherElements ? max(1, target.threads) : 1
        case .optimizerStep:
            return parameterBlockFloats >= Self.parallelOptimizerFloats ? max(1, target.threads) : 1
        case .activationForward, .dropoutForward, .softmaxCrossEntropy, .meanSquaredError, .activationBackward,
            .dropoutBackward, .classify:
            return 1
        }
    }
}
