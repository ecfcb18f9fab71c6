/// The model section: the input shape and the ordered layer list.
///
/// Layer grammar: each item is its kind, alone for a layer with no required parameter
/// (`- relu`, `- flatten`) or as the single key of a mapping whose value holds the parameters
/// (`- linear: {out: 128, activation: relu}`, `- flatten: {}`). A linear's `activation` uses the same
/// grammar (`activation: relu`, `activation: {leaky_relu: {negative_slope: 0.2}}`).
extension SpecDecoder {
    static let layerKinds = ["flatten", "linear", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "dropout"]
        + convolutionKinds
    static let activationKinds = ["relu", "leaky_relu", "sigmoid", "tanh", "gelu"]
    static let linearKeys = ["out", "bias", "init", "activation", "name"]
    static let maximumFeatures = 1 << 24
    static let maximumInputRank = 8
    static let maximumLayerNameLength = 64

    private static let layerKindHints: [String: String] = [
        "softmax": "cross_entropy includes the softmax: end the model with a linear layer (logits)",
        "log_softmax": "cross_entropy includes the log-softmax: end the model with a linear layer (logits)",
    ]
    private static let activationHints: [String: String] = [
        "softmax": "cross_entropy includes the softmax: leave the last linear without an activation (logits)",
        "none": "leave 'activation' out for a linear without an activation",
        "linear": "leave 'activation' out for a linear without an activation",
        "identity": "leave 'activation' out for a linear without an activation",
    ]

    mutating func decodeModel(_ root: MappingView) -> ModelSpec? {
        guard let view = section(root, "model", example: "{input_shape: [1, 28, 28], layers: [...]}") else { return nil }
        checkKeys(view, allowed: SpecDecoder.modelKeys)
        let inputShape = decodeInputShape(view)
        let layers = decodeLayers(view)
        guard let inputShape, let layers else { return nil }
        return ModelSpec(inputShape: inputShape, layers: layers, location: view.location)
    }

    private mutating func decodeInputShape(_ view: MappingView) -> Located<[Int]>? {
        guard let entry = view["input_shape"], !entry.value.isNull else {
            if inputShapeFromData { return Located([], at: view.location) }
            reportMissing("input_shape", in: view, example: "[1, 28, 28]")
            return nil
        }
        guard case .sequence(let items) = entry.value.content else {
            report(.error(
                .wrongType,
                "expected a list of sizes for 'model.input_shape' such as [1, 28, 28], found \(entry.value.shortDescription)",
                at: entry.value.location))
            return nil
        }
        guard (1...SpecDecoder.maximumInputRank).contains(items.count) else {
            report(.error(
                .outOfRange,
                "'model.input_shape' must have between 1 and \(SpecDecoder.maximumInputRank) dimensions, found \(items.count)",
                at: entry.value.location))
            return nil
        }
        var sizes: [Int] = []
        for (index, item) in items.enumerated() {
            if let size = integer(item, name: "model.input_shape[\(index)]", in: 1...SpecDecoder.maximumFeatures) {
                sizes.append(size.value)
            }
        }
        guard sizes.count == items.count else { return nil }
        return Located(sizes, at: entry.value.location)
    }

    // MARK: layers

    private mutating func decodeLayers(_ view: MappingView) -> [LayerSpec]? {
        guard let entry = view["layers"] else {
            reportMissing("layers", in: view, example: "[flatten, {linear: {out: 10}}]")
            return nil
        }
        var items: [YAMLNode] = []
        switch entry.value.content {
        case .sequence(let list): items = list
        case .scalar where entry.value.isNull: break
        default:
            report(.error(
                .wrongType, "expected a list of layers for 'model.layers', found \(entry.value.shortDescription)",
                at: entry.value.location))
            return nil
        }
        guard !items.isEmpty else {
            report(.error(
                .emptyLayers, "'model.layers' is empty; a model needs at least one layer", at: entry.key.location,
                suggestion: "add layers such as '- flatten' and '- linear: {out: 10}'"))
            return nil
        }

        // Planning and training visit every layer; the arena's placement compares each buffer with
        // those placed before it. A bound keeps a hostile spec from making either slow.
        guard items.count <= SpecDecoder.maximumLayers else {
            report(.error(
                .tooManyLayers,
                "'model.layers' has \(items.count) layers; mlpc plans at most \(SpecDecoder.maximumLayers)",
                at: items[SpecDecoder.maximumLayers].location,
                notes: [DiagnosticNote("the list starts here", at: entry.key.location)]))
            return nil
        }
        var kindCounts: [String: Int] = [:]
        var layers: [LayerSpec] = []
        var allDecoded = true
        var firstUse: [String: SourceLocation] = [:]
        for (index, item) in items.enumerated() {
            guard let (layer, isNamed) = decodeLayer(item, path: "model.layers[\(index)]", kindCounts: &kindCounts) else {
                allDecoded = false
                continue
            }
            if let first = firstUse[layer.name.value] {
                let message = isNamed
                    ? "duplicate layer name '\(layer.name.value)'"
                    : "this layer's default name '\(layer.name.value)' is already taken"
                report(.error(
                    .duplicateLayerName, message, at: layer.name.location,
                    notes: [DiagnosticNote("'\(layer.name.value)' first used here", at: first)],
                    suggestion: isNamed ? nil : "give one of the two layers another 'name'"))
                allDecoded = false
            } else {
                firstUse[layer.name.value] = layer.name.location
            }
            layers.append(layer)
        }
        return allDecoded ? layers : nil
    }

    /// One layer item; the flag says whether its name was written (not defaulted).
    private mutating func decodeLayer(
        _ node: YAMLNode, path: String, kindCounts: inout [String: Int]
    ) -> (LayerSpec, Bool)? {
        guard let entry = kindEntry(node, path: path, what: "layer", kinds: SpecDecoder.layerKinds) else { return nil }
        guard SpecDecoder.layerKinds.contains(entry.kind) else {
            let help = SpecDecoder.layerKindHints[entry.kind]
                ?? suggestion(for: entry.kind, among: SpecDecoder.layerKinds).map { "did you mean '\($0)'?" }
            report(.error(
                .unknownLayerKind, "unknown layer kind \(quote(entry.kind)) in '\(path)'", at: entry.location,
                notes: [DiagnosticNote("known: \(SpecDecoder.layerKinds.joined(separator: ", "))")], suggestion: help))
            return nil
        }
        let count = kindCounts[entry.kind, default: 0] + 1
        kindCounts[entry.kind] = count
        let parametersPath = "\(path).\(entry.kind)"
        var parametersNode = entry.parameters
        // `max_pool2d: 2` is short for `max_pool2d: {kernel: 2}`.
        if let node = parametersNode, let key = SpecDecoder.shorthandKey(of: entry.kind), node.scalar.map({ !$0.isNull }) == true
            || { if case .sequence = node.content { return true } else { return false } }()
        {
            let keyScalar = YAMLScalar(value: key, style: .plain, location: node.location)
            parametersNode = YAMLNode(content: .mapping([YAMLNode.Entry(key: keyScalar, value: node)]), location: node.location)
        }
        guard let parameters = mapping(parametersNode, path: parametersPath, owner: entry.location) else { return nil }

        let kind: LayerKind?
        switch entry.kind {
        case "flatten":
            checkKeys(parameters, allowed: ["name"])
            kind = .flatten
        case "linear":
            kind = decodeLinear(parameters).map { .linear($0) }
        case "dropout":
            checkKeys(parameters, allowed: ["p", "name"])
            kind = number(
                parameters, "p", default: 0.5, in: .unitHalfOpen,
                float32: .belowOne(because: "dropout would drop every element"), example: "0.2"
            ).map { .dropout(p: $0) }
        case _ where SpecDecoder.convolutionKinds.contains(entry.kind):
            kind = decodeConvolutionKind(entry.kind, parameters)
        default:
            kind = activation(entry.kind, at: entry.location, parameters: parameters, extraKeys: ["name"])
                .map { .activation($0) }
        }

        let defaultName: String
        switch entry.kind {
        case "linear": defaultName = "fc\(count)"
        case "conv2d": defaultName = "conv\(count)"
        case "batch_norm": defaultName = "bn\(count)"
        case "max_pool2d": defaultName = "max_pool\(count)"
        case "avg_pool2d": defaultName = "avg_pool\(count)"
        case "adaptive_avg_pool2d": defaultName = "global_pool\(count)"
        default: defaultName = "\(entry.kind)\(count)"
        }
        var name: Located<String>? = Located(defaultName, at: node.location)
        let isNamed = parameters["name"].map { !$0.value.isNull } ?? false
        if let written = parameters["name"], isNamed {
            name = layerName(written.value, path: parametersPath)
        }
        guard let kind, let name else { return nil }
        return (LayerSpec(name: name, kind: kind, location: node.location), isNamed)
    }

    private mutating func layerName(_ node: YAMLNode, path: String) -> Located<String>? {
        guard let name = string(node, name: "\(path).name") else { return nil }
        // Layer names become tensor names (fc1.weight): identifiers only.
        let bytes = name.value.utf8
        let isValid = !bytes.isEmpty && bytes.count <= SpecDecoder.maximumLayerNameLength
            && bytes.first.map { isAlphanumeric($0) && !($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F } == true
            && bytes.allSatisfy { isAlphanumeric($0) || $0 == 0x5F }
        guard isValid else {
            report(.error(
                .invalidName,
                "the layer name \(quote(name.value)) must be an identifier: a letter or '_', then letters, digits or '_' (at most \(SpecDecoder.maximumLayerNameLength))",
                at: name.location))
            return nil
        }
        return name
    }

    private mutating func decodeLinear(_ parameters: MappingView) -> LinearSpec? {
        checkKeys(parameters, allowed: SpecDecoder.linearKeys)
        let out = integer(parameters, "out", default: nil, in: 1...SpecDecoder.maximumFeatures, example: "128")
        let bias = boolean(parameters, "bias", default: true)
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
        guard let out, let bias, let initialization, activationValid else { return nil }
        return LinearSpec(outFeatures: out, bias: bias, initialization: initialization, activation: fused)
    }

    /// A linear's `activation`: the same kind grammar as a layer, limited to activations.
    mutating func activationOption(_ node: YAMLNode, path: String) -> Located<Activation>? {
        guard let entry = kindEntry(node, path: path, what: "activation", kinds: SpecDecoder.activationKinds) else {
            return nil
        }
        guard SpecDecoder.activationKinds.contains(entry.kind) else {
            let help = SpecDecoder.activationHints[entry.kind]
                ?? suggestion(for: entry.kind, among: SpecDecoder.activationKinds).map { "did you mean '\($0)'?" }
            report(.error(
                .unknownActivation, "unknown activation \(quote(entry.kind)) for '\(path)'", at: entry.location,
                notes: [DiagnosticNote("known: \(SpecDecoder.activationKinds.joined(separator: ", "))")],
                suggestion: help))
            return nil
        }
        guard let parameters = mapping(entry.parameters, path: "\(path).\(entry.kind)", owner: entry.location) else {
            return nil
        }
        return activation(entry.kind, at: entry.location, parameters: parameters, extraKeys: [])
    }

    /// An activation of a known kind with its parameters (PyTorch's defaults).
    private mutating func activation(
        _ kind: String, at location: SourceLocation, parameters: MappingView, extraKeys: [String]
    ) -> Located<Activation>? {
        switch kind {
        case "leaky_relu":
            checkKeys(parameters, allowed: ["negative_slope"] + extraKeys)
            return number(parameters, "negative_slope", default: 0.01, in: .any, example: "0.01")
                .map { Located(.leakyRelu(negativeSlope: $0.value), at: location) }
        case "gelu":
            checkKeys(parameters, allowed: ["approximate"] + extraKeys)
            guard let entry = parameters["approximate"], !entry.value.isNull else {
                return Located(.gelu(tanhApproximation: false), at: location)
            }
            return choice(
                entry.value, name: parameters.qualified("approximate"), what: "GELU approximation",
                among: ["none", "tanh"], code: .unknownChoice
            ).map { Located(.gelu(tanhApproximation: $0.value == "tanh"), at: location) }
        case "sigmoid":
            checkKeys(parameters, allowed: extraKeys)
            return Located(.sigmoid, at: location)
        case "tanh":
            checkKeys(parameters, allowed: extraKeys)
            return Located(.tanh, at: location)
        default:
            checkKeys(parameters, allowed: extraKeys)
            return Located(.relu, at: location)
        }
    }

    // MARK: kind entries

    struct KindEntry {
        var kind: String
        /// Where the kind is written.
        var location: SourceLocation
        /// The parameters node (nil for the bare form).
        var parameters: YAMLNode?
    }

    /// Reads `relu` or `{linear: {...}}`: a kind alone, or a mapping whose single key is the kind.
    private mutating func kindEntry(_ node: YAMLNode, path: String, what: String, kinds: [String]) -> KindEntry? {
        switch node.content {
        case .scalar(let scalar) where !scalar.isNull:
            return KindEntry(kind: scalar.value, location: node.location, parameters: nil)
        case .mapping(let entries) where entries.count == 1:
            return KindEntry(kind: entries[0].key.value, location: entries[0].key.location, parameters: entries[0].value)
        case .mapping(let entries) where entries.count > 1:
            let keys = entries.prefix(8).map { quote($0.key.value) }.joined(separator: ", ")
            let kindKeys = entries.filter { kinds.contains($0.key.value) }
            var help: String?
            if kindKeys.count == 1 {
                let others = entries.filter { $0.key.value != kindKeys[0].key.value }.map { "\($0.key.value): ..." }
                help = "put the parameters inside the kind: '\(kindKeys[0].key.value): {\(others.joined(separator: ", "))}'"
            }
            report(.error(
                .malformedKindEntry,
                "\(what) '\(path)' must have exactly one key, its kind; found \(entries.count) keys: \(keys)",
                at: node.location, suggestion: help))
            return nil
        default:
            report(.error(
                .malformedKindEntry,
                "expected \(what == "activation" ? "an" : "a") \(what) for '\(path)' (a kind such as 'relu', or a mapping with one key such as 'linear: {out: 10}'), found \(node.shortDescription)",
                at: node.location))
            return nil
        }
    }

    // MARK: cross-section checks

    /// cross_entropy applies log-softmax to its input; an activation right before it is almost
    /// always a mistake (the model's output should be logits).
    mutating func warnAboutActivationBeforeCrossEntropy(model: ModelSpec, loss: LossSpec) {
        guard loss.kind.value == .crossEntropy,
            let last = model.layers.last(where: {
                if case .dropout = $0.kind { return false }
                if case .flatten = $0.kind { return false }
                return true
            })
        else { return }
        let applied: Located<Activation>?
        switch last.kind {
        case .activation(let activation): applied = activation
        case .linear(let linear): applied = linear.activation
        case .conv2d(let conv): applied = conv.activation
        case .flatten, .dropout, .pool2d, .adaptiveAveragePool2d, .batchNorm: applied = nil
        }
        guard let applied else { return }
        report(.warning(
            .activationBeforeCrossEntropy,
            "the model's output goes through \(applied.value.specName), but cross_entropy expects logits",
            at: applied.location, notes: [DiagnosticNote("the loss is chosen here", at: loss.kind.location)],
            suggestion: "remove the last activation; cross_entropy applies the softmax itself"))
    }
}
