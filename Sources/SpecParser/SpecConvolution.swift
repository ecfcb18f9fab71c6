/// The options of the convolutional layer kinds, PyTorch's nn.Conv2d, nn.MaxPool2d / nn.AvgPool2d,
/// nn.AdaptiveAvgPool2d and nn.BatchNorm1d / nn.BatchNorm2d, with PyTorch's defaults.

/// A size given for both spatial dimensions: `5` or `[5, 3]` (height, width).
public struct SpatialPair: Codable, Equatable, Sendable {
    public var height: Int
    public var width: Int

    public init(_ height: Int, _ width: Int) {
        self.height = height
        self.width = width
    }

    public static func square(_ size: Int) -> SpatialPair { SpatialPair(size, size) }

    public var text: String { height == width ? "\(height)" : "[\(height), \(width)]" }
}

/// A convolution's padding: explicit sizes, or `same` (the output keeps the input's size; stride 1 only,
/// PyTorch pads the extra row or column at the bottom or right when the total is odd).
public enum Padding: Codable, Equatable, Sendable {
    case explicit(SpatialPair)
    case same
}

public struct Conv2dSpec: Codable, Equatable, Sendable {
    public var outChannels: Located<Int>
    public var kernel: Located<SpatialPair>
    public var stride: Located<SpatialPair>
    public var padding: Located<Padding>
    public var dilation: Located<SpatialPair>
    public var groups: Located<Int>
    public var bias: Located<Bool>
    public var initialization: Located<Initialization>
    /// An activation applied to the output in the convolution's epilogue.
    public var activation: Located<Activation>?

    public init(
        outChannels: Located<Int>, kernel: Located<SpatialPair>, stride: Located<SpatialPair>, padding: Located<Padding>,
        dilation: Located<SpatialPair>, groups: Located<Int>, bias: Located<Bool>, initialization: Located<Initialization>,
        activation: Located<Activation>?
    ) {
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.bias = bias
        self.initialization = initialization
        self.activation = activation
    }
}

public enum PoolingKind: String, Codable, Equatable, Sendable {
    case max, average
}

public struct Pool2dSpec: Codable, Equatable, Sendable {
    public var kind: PoolingKind
    public var kernel: Located<SpatialPair>
    /// Defaults to the kernel (PyTorch's `stride=None`).
    public var stride: Located<SpatialPair>
    public var padding: Located<SpatialPair>
    public var ceilMode: Located<Bool>
    /// A max pool's spacing of window taps (1 for an average).
    public var dilation: Located<SpatialPair>
    /// An average's divisor counts the padding (PyTorch's default) or only the input it covers.
    public var countIncludePad: Located<Bool>

    public init(
        kind: PoolingKind, kernel: Located<SpatialPair>, stride: Located<SpatialPair>, padding: Located<SpatialPair>,
        ceilMode: Located<Bool>, dilation: Located<SpatialPair>, countIncludePad: Located<Bool>
    ) {
        self.dilation = dilation
        self.countIncludePad = countIncludePad
        self.kind = kind
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.ceilMode = ceilMode
    }
}

public struct BatchNormSpec: Codable, Equatable, Sendable {
    public var eps: Located<Double>
    /// The running statistics' update factor (PyTorch's default 0.1); nil (`momentum: null`, PyTorch's
    /// None): the cumulative average of the batches' statistics.
    public var momentum: Located<Double>?
    /// Whether the layer has a learned scale (weight) and shift (bias).
    public var affine: Located<Bool>

    public init(eps: Located<Double>, momentum: Located<Double>?, affine: Located<Bool>) {
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
    }
}
