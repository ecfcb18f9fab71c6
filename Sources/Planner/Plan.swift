import KernelInterface
import SpecParser

/// Everything the runtime will do for a spec on a target, as a plain value: the parameter tensors, the
/// buffer table of the one arena, and the kernels of a training step and of evaluation, in order.
/// `mlpc plan` prints it; `--format json` encodes it; the runtime executes it.
public struct Plan: Codable, Equatable, Sendable {
    public var specName: String
    public var target: Target
    /// Rows of a training step and of an evaluation step; a partial last batch runs with fewer rows.
    /// With `dataParallel`, a training step's rows on one rank (its share of the global batch).
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
    /// Where the samples come from.
    public var data: DataSource
    /// How training walks the data: shuffling, a partial last batch, the held-out validation share.
    public var schedule: TrainingSchedule
    /// The options the plan was made with (passes turned off).
    public var options: PlanOptions
    /// Every optional pass, whether it applied, and why or why not.
    public var passes: [PassReport] = []
    /// Whether, and during which kernels, the training step gathers the next batch ahead of time.
    public var batchPrefetch: BatchPrefetch? = nil
    /// The layer whose features the runtime may store live-first during an epoch, if any.
    public var liveFirstFeatures: LiveFirstFeatures? = nil
    /// The layer that absorbs the input normalization's shift, if any.
    public var shiftedInput: ShiftedInput? = nil
    /// Training over several processes (`PlanOptions.ranks` > 1): the split and the step's allreduce.
    public var dataParallel: DataParallel? = nil
    /// Tensors of the model that training updates without the optimizer (batch norm's running
    /// statistics), in the `model_state` buffer; empty for a model without them.
    public var modelState: [StateTensor] = []
    /// Floats of the `model_state` buffer.
    public var modelStateFloats: Int = 0

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
    /// A value every element starts at, instead of a draw (batch norm: weight 1, bias 0).
    public var constant: Float? = nil

    /// Where PyTorch's element `index` (row-major over `shape`) is, counted from `offset`.
    public func storedIndex(_ index: Int) -> Int {
        switch role {
        case .bias:
            return index
        case .weight where shape.count != 2:
            // Convolution weights keep PyTorch's row-major layout.
            return index
        case .weight:
            let inFeatures = shape[1]
            return WeightPanels.offset(output: index / inFeatures, input: index % inFeatures, inFeatures: inFeatures)
        }
    }
}

/// A tensor of the model's state that is not a parameter (PyTorch's buffers: `bn1.running_mean`,
/// `bn1.running_var`, `bn1.num_batches_tracked`), at `offset` floats into the `model_state` buffer.
/// num_batches_tracked is a count kept as a float (exact up to 2^24 steps) and written as a scalar.
public struct StateTensor: Codable, Equatable, Sendable {
    public enum Role: String, Codable, Sendable { case runningMean, runningVar, batchesTracked }
    public var name: String
    public var layer: String
    public var role: Role
    /// PyTorch's shape: [channels], or [] for num_batches_tracked.
    public var shape: [Int]
    public var offset: Int
    public var count: Int
    public var location: SourceLocation

    /// PyTorch's initial value: running_var 1, the others 0.
    public var initialValue: Float { role == .runningVar ? 1 : 0 }
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

    /// PyTorch's names of the moment blocks, in block order (`exp_avg`, `exp_avg_sq`; `momentum_buffer`).
    public var stateNames: [String] {
        let names = kind == .sgd ? ["momentum_buffer"] : ["exp_avg", "exp_avg_sq"]
        return Array(names.prefix(stateBlocks))
    }
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
            preactivation, mask, lossScratch, predictions,
            /// Batch norm's running statistics (persistent, saved with the parameters).
            modelState,
            /// A max pool's argmax per output (int32).
            poolIndices,
            /// Batch norm's per-channel mean and 1/std of the batch, kept for the backward pass.
            statistics,
            /// An evaluation layer's weight and bias with the batch norm after it folded in.
            foldedWeights
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

extension Plan {
    /// Batches of at least this many input values are gathered by every thread: a training batch of
    /// MNIST (50,176 values) takes about 10 microseconds on one core, a hand-off one or two.
    public static let parallelGatherElements = 8192
    /// A parameter block of at least this many floats is updated by every thread.
    public static let parallelOptimizerFloats = 65536

    /// How many threads run `kernel` (the planner fixed it in the kernel).
    public func threads(of kernel: Kernel) -> Int { kernel.threads }
}
