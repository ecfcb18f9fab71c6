/// A model and its training, as the spec file says them, fully defaulted and range-checked.
/// Every field keeps the location it came from (a defaulted field: the location of its parent node).
public struct Spec: Codable, Equatable, Sendable {
    public var name: Located<String>
    public var seed: Located<UInt64>
    public var data: DataSpec
    public var model: ModelSpec
    public var loss: LossSpec
    public var optimizer: OptimizerSpec
    public var training: TrainingSpec
    /// The spec file as given on the command line.
    public var path: String
    /// The spec file's text exactly as written, less a leading byte-order mark (for run records,
    /// copies and model files).
    public var sourceText: String

    public init(
        name: Located<String>, seed: Located<UInt64>, data: DataSpec, model: ModelSpec, loss: LossSpec,
        optimizer: OptimizerSpec, training: TrainingSpec, path: String, sourceText: String
    ) {
        self.name = name
        self.seed = seed
        self.data = data
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.training = training
        self.path = path
        self.sourceText = sourceText
    }
}

public struct DataSpec: Codable, Equatable, Sendable {
    /// The directory as written in the spec (`data.dir`).
    public var directory: Located<String>
    /// `directory` resolved against the spec file's folder (absolute or relative to the working directory).
    public var resolvedDirectory: String
    public var mean: Located<Double>
    public var std: Located<Double>
    /// Fraction of the training set held out for validation, 0 when absent.
    public var validationFraction: Located<Double>
    /// `format: csv`: the table and its columns (then `directory` is the training file, as written and resolved).
    public var table: TableSpec?
    public var location: SourceLocation

    public init(
        directory: Located<String>, resolvedDirectory: String, mean: Located<Double>, std: Located<Double>,
        validationFraction: Located<Double>, table: TableSpec? = nil, location: SourceLocation
    ) {
        self.table = table
        self.directory = directory
        self.resolvedDirectory = resolvedDirectory
        self.mean = mean
        self.std = std
        self.validationFraction = validationFraction
        self.location = location
    }
}

public struct ModelSpec: Codable, Equatable, Sendable {
    /// Per-sample input shape, e.g. [1, 28, 28]. Empty for a table spec that leaves it out: the
    /// width after one-hot encoding is known once the data is read, and the command line fills it in.
    public var inputShape: Located<[Int]>
    public var layers: [LayerSpec]
    public var location: SourceLocation

    public init(inputShape: Located<[Int]>, layers: [LayerSpec], location: SourceLocation) {
        self.inputShape = inputShape
        self.layers = layers
        self.location = location
    }
}

public struct LayerSpec: Codable, Equatable, Sendable {
    /// Given or defaulted: linears are fc1, fc2, ... as in the PyTorch tutorial; other layers are
    /// named after their kind and index (relu1, dropout1, flatten1).
    public var name: Located<String>
    public var kind: LayerKind
    /// The location of the layer's list item.
    public var location: SourceLocation

    public init(name: Located<String>, kind: LayerKind, location: SourceLocation) {
        self.name = name
        self.kind = kind
        self.location = location
    }
}

public enum LayerKind: Codable, Equatable, Sendable {
    case flatten
    case linear(LinearSpec)
    case activation(Located<Activation>)
    case dropout(p: Located<Double>)
    case conv2d(Conv2dSpec)
    case pool2d(Pool2dSpec)
    /// `adaptive_avg_pool2d: 1`: the mean of each channel (global average pooling).
    case adaptiveAveragePool2d(outputSize: Located<SpatialPair>)
    case batchNorm(BatchNormSpec)
}

public struct LinearSpec: Codable, Equatable, Sendable {
    public var outFeatures: Located<Int>
    public var bias: Located<Bool>
    public var initialization: Located<Initialization>
    /// An activation applied to this layer's output (`activation: relu` on the linear).
    public var activation: Located<Activation>?

    public init(
        outFeatures: Located<Int>, bias: Located<Bool>, initialization: Located<Initialization>,
        activation: Located<Activation>?
    ) {
        self.outFeatures = outFeatures
        self.bias = bias
        self.initialization = initialization
        self.activation = activation
    }
}

public enum Activation: Codable, Equatable, Hashable, Sendable {
    case relu
    /// PyTorch's default negative slope is 0.01.
    case leakyRelu(negativeSlope: Double)
    case sigmoid
    case tanh
    /// Exact (erf) GELU, PyTorch's default `approximate='none'`; `tanh: true` selects the tanh form.
    case gelu(tanhApproximation: Bool)

    /// The spelling used in specs.
    public var specName: String {
        switch self {
        case .relu: return "relu"
        case .leakyRelu: return "leaky_relu"
        case .sigmoid: return "sigmoid"
        case .tanh: return "tanh"
        case .gelu: return "gelu"
        }
    }
}

public enum Initialization: String, Codable, Equatable, Sendable, CaseIterable {
    /// nn.Linear's default: weights kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    /// biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    case pytorchDefault = "default"
    /// U(-sqrt(6/(fan_in+fan_out)), +...), biases zero.
    case xavierUniform = "xavier_uniform"
    /// kaiming_uniform for ReLU (gain sqrt(2)): U(-sqrt(6/fan_in), +...), biases zero.
    case kaimingUniform = "kaiming_uniform"
    /// N(0, 2/fan_in), biases zero.
    case kaimingNormal = "kaiming_normal"
}

public enum LossKind: String, Codable, Equatable, Sendable, CaseIterable {
    /// On logits, softmax fused; labels are class indices.
    case crossEntropy = "cross_entropy"
    /// Mean squared error: against one-hot targets of the labels for classes, against the target
    /// values for a regressor.
    case mse
    /// Mean absolute error (regressors; PyTorch's L1Loss).
    case l1
    /// Huber loss with delta 1 (regressors; PyTorch's HuberLoss): squared below delta, linear above.
    case huber
}

public struct LossSpec: Codable, Equatable, Sendable {
    public var kind: Located<LossKind>
    public var location: SourceLocation

    public init(kind: Located<LossKind>, location: SourceLocation) {
        self.kind = kind
        self.location = location
    }
}

public struct OptimizerSpec: Codable, Equatable, Sendable {
    public var kind: Located<OptimizerKind>
    public var lr: Located<Double>
    /// sgd only (PyTorch defaults: 0, false, 0).
    public var momentum: Located<Double>
    public var dampening: Located<Double>
    public var nesterov: Located<Bool>
    /// adam and adamw only (PyTorch defaults: (0.9, 0.999), 1e-8).
    public var beta1: Located<Double>
    public var beta2: Located<Double>
    public var eps: Located<Double>
    /// PyTorch defaults: 0 for sgd and adam, 0.01 for adamw.
    public var weightDecay: Located<Double>
    public var location: SourceLocation

    public init(
        kind: Located<OptimizerKind>, lr: Located<Double>, momentum: Located<Double>,
        dampening: Located<Double>, nesterov: Located<Bool>, beta1: Located<Double>, beta2: Located<Double>,
        eps: Located<Double>, weightDecay: Located<Double>, location: SourceLocation
    ) {
        self.kind = kind
        self.lr = lr
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.location = location
    }
}

public enum OptimizerKind: String, Codable, Equatable, Sendable, CaseIterable {
    case sgd, adam, adamw
}

public struct TrainingSpec: Codable, Equatable, Sendable {
    public var batchSize: Located<Int>
    public var epochs: Located<Int>
    public var shuffle: Located<Bool>
    public var dropLast: Located<Bool>
    /// nil: all cores.
    public var threads: Located<Int>?
    /// Batch size for evaluation; defaults to 1000.
    public var evalBatchSize: Located<Int>
    public var location: SourceLocation
    /// Set when a command-line flag replaced `batchSize`, so diagnostics about the batch size name the
    /// flag rather than blame the spec's line (which `batchSize` still points at).
    public private(set) var batchSizeOverride: CommandLineOverride?

    public init(
        batchSize: Located<Int>, epochs: Located<Int>, shuffle: Located<Bool>, dropLast: Located<Bool>,
        threads: Located<Int>?, evalBatchSize: Located<Int>, location: SourceLocation
    ) {
        self.batchSize = batchSize
        self.epochs = epochs
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.threads = threads
        self.evalBatchSize = evalBatchSize
        self.location = location
    }

    /// Replaces the batch size with `value` given by `flag` (`--batch-size`), remembering the spec's own.
    public mutating func overrideBatchSize(_ value: Int, from flag: String) {
        batchSizeOverride = CommandLineOverride(flag: flag, specValue: batchSize.value)
        batchSize.value = value
    }
}

/// A command-line flag that replaced a value of the spec.
public struct CommandLineOverride: Codable, Equatable, Sendable {
    /// The flag as the user types it, e.g. "--batch-size".
    public var flag: String
    /// The value the spec itself gives.
    public var specValue: Int

    public init(flag: String, specValue: Int) {
        self.flag = flag
        self.specValue = specValue
    }
}
