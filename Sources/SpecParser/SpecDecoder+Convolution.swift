/// The convolutional layer kinds' options: `conv2d`, `max_pool2d`, `avg_pool2d`, `adaptive_avg_pool2d`
/// and `batch_norm`, with PyTorch's defaults. A spatial size is `5` or `[5, 3]` (height, width).
extension SpecDecoder {
    static let convolutionKinds = ["conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "batch_norm"]
    static let conv2dKeys = ["out", "kernel", "stride", "padding", "dilation", "groups", "bias", "init", "activation", "name"]
    static let maxPoolKeys = ["kernel", "stride", "padding", "dilation", "ceil_mode", "name"]
    static let averagePoolKeys = ["kernel", "stride", "padding", "ceil_mode", "count_include_pad", "name"]
    static let batchNormKeys = ["eps", "momentum", "affine", "name"]
    /// Kernels, strides, paddings and dilations beyond this are refused as typing mistakes.
    static let maximumSpatialSize = 1 << 16

    /// The layer for a convolutional kind, from its parameters.
    mutating func decodeConvolutionKind(_ kind: String, _ parameters: MappingView) -> LayerKind? {
        switch kind {
        case "conv2d":
            return decodeConv2d(parameters).map { .conv2d($0) }
        case "max_pool2d", "avg_pool2d":
            return decodePool(parameters, kind: kind == "max_pool2d" ? .max : .average).map { .pool2d($0) }
        case "adaptive_avg_pool2d":
            checkKeys(parameters, allowed: ["output_size", "name"])
            return spatialPair(parameters, "output_size", default: 1, minimum: 1, example: "1")
                .map { .adaptiveAveragePool2d(outputSize: $0) }
        default:
            checkKeys(parameters, allowed: SpecDecoder.batchNormKeys)
            let eps = number(parameters, "eps", default: 1e-5, in: .positive, float32: .normal(because: "eps must stay positive"), example: "1e-5")
            // `momentum: null` is PyTorch's momentum=None (a cumulative average), not the default.
            let cumulative = parameters["momentum"].map { $0.value.isNull } ?? false
            let momentum = cumulative
                ? nil : number(parameters, "momentum", default: 0.1, in: NumberInterval(lower: 0, upper: 1), example: "0.1")
            let affine = boolean(parameters, "affine", default: true)
            guard let eps, cumulative || momentum != nil, let affine else { return nil }
            return .batchNorm(BatchNormSpec(eps: eps, momentum: momentum, affine: affine))
        }
    }

    /// `pool: 2` is the short form of `pool: {kernel: 2}` (the scalar given in place of the mapping).
    static func shorthandKey(of kind: String) -> String? {
        switch kind {
        case "max_pool2d", "avg_pool2d": return "kernel"
        case "adaptive_avg_pool2d": return "output_size"
        default: return nil
        }
    }

    private mutating func decodeConv2d(_ parameters: MappingView) -> Conv2dSpec? {
        checkKeys(parameters, allowed: SpecDecoder.conv2dKeys)
        let out = integer(parameters, "out", default: nil, in: 1...SpecDecoder.maximumFeatures, example: "6")
        let kernel = spatialPair(parameters, "kernel", default: nil, minimum: 1, example: "5")
        let stride = spatialPair(parameters, "stride", default: 1, minimum: 1, example: "1")
        let dilation = spatialPair(parameters, "dilation", default: 1, minimum: 1, example: "1")
        let groups = integer(parameters, "groups", default: 1, in: 1...SpecDecoder.maximumFeatures, example: "1")
        let bias = boolean(parameters, "bias", default: true)
        var padding: Located<Padding>? = Located(.explicit(.square(0)), at: parameters.location)
        if let entry = parameters["padding"], !entry.value.isNull {
            if let scalar = entry.value.scalar, scalar.style == .plain, !isDecimalInteger(scalar.value) {
                padding = choice(entry.value, name: parameters.qualified("padding"), what: "padding", among: ["same", "valid"], code: .unknownChoice)
                    .map { Located($0.value == "same" ? .same : .explicit(.square(0)), at: $0.location) }
            } else {
                padding = spatialPair(parameters, "padding", default: 0, minimum: 0, example: "2").map { Located(.explicit($0.value), at: $0.location) }
            }
        }
        if case .same? = padding?.value, let stride, stride.value != .square(1) {
            report(.error(
                .outOfRange, "'\(parameters.qualified("padding"))' same needs stride 1, found stride \(stride.value.text)",
                at: padding!.location, notes: [DiagnosticNote("the stride is set here", at: stride.location)],
                suggestion: "give the padding as numbers, or set the stride to 1"))
            padding = nil
        }
        var initialization: Located<Initialization>? = Located(.pytorchDefault, at: parameters.location)
        if let entry = parameters["init"], !entry.value.isNull {
            initialization = choice(
                entry.value, name: parameters.qualified("init"), what: "initialization",
                among: Initialization.allCases.map(\.rawValue), code: .unknownChoice
            ).flatMap { name in Initialization(rawValue: name.value).map { Located($0, at: name.location) } }
        }
        var activationValid = true
        var fused: Located<Activation>?
        if let entry = parameters["activation"], !entry.value.isNull {
            fused = activationOption(entry.value, path: parameters.qualified("activation"))
            activationValid = fused != nil
        }
        guard let out, let kernel, let stride, let dilation, let groups, let bias, let padding, let initialization,
            activationValid
        else { return nil }
        return Conv2dSpec(
            outChannels: out, kernel: kernel, stride: stride, padding: padding, dilation: dilation, groups: groups, bias: bias,
            initialization: initialization, activation: fused)
    }

    private mutating func decodePool(_ parameters: MappingView, kind: PoolingKind) -> Pool2dSpec? {
        checkKeys(parameters, allowed: kind == .max ? SpecDecoder.maxPoolKeys : SpecDecoder.averagePoolKeys)
        let kernel = spatialPair(parameters, "kernel", default: nil, minimum: 1, example: "2")
        var stride = spatialPair(parameters, "stride", default: nil, minimum: 1, example: "2", optional: true)
        if stride == nil, parameters["stride"].map({ $0.value.isNull }) ?? true, let kernel { stride = kernel }
        let padding = spatialPair(parameters, "padding", default: 0, minimum: 0, example: "0")
        let ceilMode = boolean(parameters, "ceil_mode", default: false)
        let dilation = spatialPair(parameters, "dilation", default: 1, minimum: 1, example: "1")
        let countIncludePad = boolean(parameters, "count_include_pad", default: true)
        guard let kernel, let stride, let padding, let ceilMode, let dilation, let countIncludePad else { return nil }
        // PyTorch: "pad should be at most half of effective kernel size".
        if padding.value.height * 2 > kernel.value.height || padding.value.width * 2 > kernel.value.width {
            report(.error(
                .outOfRange,
                "'\(parameters.qualified("padding"))' \(padding.value.text) must be at most half the kernel \(kernel.value.text)",
                at: padding.location, notes: [DiagnosticNote("the kernel is set here", at: kernel.location)]))
            return nil
        }
        return Pool2dSpec(
            kind: kind, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode, dilation: dilation,
            countIncludePad: countIncludePad)
    }

    /// `5` or `[5, 3]`; nil (with an error) when it is neither, or a size is out of range.
    private mutating func spatialPair(
        _ view: MappingView, _ key: String, default defaultValue: Int?, minimum: Int, example: String, optional: Bool = false
    ) -> Located<SpatialPair>? {
        guard let entry = view[key], !entry.value.isNull else {
            if let defaultValue { return Located(.square(defaultValue), at: view.location) }
            if !optional { reportMissing(key, in: view, example: example) }
            return nil
        }
        let name = view.qualified(key)
        let range = minimum...SpecDecoder.maximumSpatialSize
        if case .sequence(let items) = entry.value.content {
            guard items.count == 2 else {
                report(.error(
                    .wrongType, "expected one size or two ([height, width]) for '\(name)', found \(items.count) values",
                    at: entry.value.location))
                return nil
            }
            guard let height = integer(items[0], name: "\(name)[0]", in: range),
                let width = integer(items[1], name: "\(name)[1]", in: range)
            else { return nil }
            return Located(SpatialPair(height.value, width.value), at: entry.value.location)
        }
        return integer(entry.value, name: name, in: range).map { Located(.square($0.value), at: $0.location) }
    }
}
