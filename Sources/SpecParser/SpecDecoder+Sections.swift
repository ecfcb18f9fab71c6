/// The spec's top level and its small sections: name, seed, data, loss, optimizer, training.
extension SpecDecoder {
    static let rootKeys = ["name", "seed", "data", "model", "loss", "optimizer", "training"]
    static let dataKeys = ["format", "dir", "normalize", "validation_fraction"]
    static let normalizeKeys = ["mean", "std"]
    static let trainingKeys = ["batch_size", "epochs", "shuffle", "drop_last", "threads", "eval_batch_size"]
    static let sgdKeys = ["kind", "lr", "momentum", "dampening", "nesterov", "weight_decay"]
    static let adamKeys = ["kind", "lr", "betas", "eps", "weight_decay"]
    static let modelKeys = ["input_shape", "layers"]

    /// Keys that belong in a section, for the hint when one is written at the top level.
    static let sectionOfKey: [String: String] = {
        var sections: [String: String] = [:]
        for key in dataKeys { sections[key] = "data" }
        for key in trainingKeys { sections[key] = "training" }
        for key in sgdKeys + adamKeys where key != "kind" { sections[key] = "optimizer" }
        for key in modelKeys { sections[key] = "model" }
        return sections
    }()

    /// Upper bounds that keep later arithmetic (sizes times sizes, in Int) far from overflow.
    static let maximumBatchSize = 1 << 20
    static let maximumEpochs = 1 << 20
    static let maximumThreads = 1024
    /// The most layers a model may list (E0135).
    static let maximumLayers = 10_000

    mutating func decode(root: YAMLNode, sourceText: String, dataDirectoryOverride: String?) -> Spec? {
        if root.isNull {
            report(.error(.emptySpec, "the spec is empty; it needs name, data, model, loss, optimizer and training", at: root.location))
            return nil
        }
        guard case .mapping = root.content else {
            report(.error(
                .wrongType,
                "a spec is a mapping of sections (name, data, model, loss, optimizer, training), found \(root.shortDescription)",
                at: root.location))
            return nil
        }
        guard let view = mapping(root, path: "", owner: root.location) else { return nil }
        checkKeys(view, allowed: SpecDecoder.rootKeys, elsewhere: SpecDecoder.sectionOfKey)

        let name = specName(view)
        let seed = unsignedInteger(view, "seed", default: 0)
        let data = decodeData(view, override: dataDirectoryOverride)
        let model = decodeModel(view)
        let loss = decodeLoss(view)
        let optimizer = decodeOptimizer(view)
        let training = decodeTraining(view)
        if let model, let loss { warnAboutActivationBeforeCrossEntropy(model: model, loss: loss) }
        if let data, let loss { checkLossFitsTarget(data: data, loss: loss) }

        guard !diagnostics.hasErrors, let name, let seed, let data, let model, let loss, let optimizer, let training
        else { return nil }
        return Spec(
            name: name, seed: seed, data: data, model: model, loss: loss, optimizer: optimizer, training: training,
            path: file, sourceText: sourceText)
    }

    /// The view of a section of the root; nil (with a diagnostic) when it is missing or not a mapping.
    mutating func section(_ root: MappingView, _ key: String, example: String) -> MappingView? {
        guard let entry = root[key] else {
            reportMissing(key, in: root, example: example)
            return nil
        }
        return mapping(entry.value, path: key, owner: entry.key.location)
    }

    // MARK: name

    private mutating func specName(_ root: MappingView) -> Located<String>? {
        guard let entry = root[SpecDecoder.rootKeys[0]], !entry.value.isNull else {
            reportMissing("name", in: root, example: "my_model")
            return nil
        }
        guard let name = string(entry.value, name: "name") else { return nil }
        // Names become directory and file names: keep them to a portable alphabet.
        let isValid = name.value.utf8.count <= 128 && name.value.utf8.first.map(isAlphanumeric) == true
            && name.value.utf8.allSatisfy { isAlphanumeric($0) || $0 == 0x5F || $0 == 0x2D || $0 == 0x2E }
        guard isValid else {
            report(.error(
                .invalidName,
                "the spec name \(quote(name.value)) must start with a letter or digit and use only letters, digits, '_', '-' and '.' (at most 128)",
                at: name.location))
            return nil
        }
        return name
    }

    // MARK: data

    private mutating func decodeData(_ root: MappingView, override: String?) -> DataSpec? {
        let view: MappingView
        if root["data"] == nil, override != nil {
            view = MappingView(path: "data", location: root.location, entries: [])
        } else {
            guard let section = section(root, "data", example: "{dir: ../data/mnist}") else { return nil }
            view = section
        }
        if let format = view["format"], !format.value.isNull,
            let kind = choice(format.value, name: "data.format", what: "data format", among: ["idx", "csv"], code: .unknownChoice),
            kind.value == "csv"
        {
            inputShapeFromData = true
            return decodeTableData(view)
        }
        checkKeys(view, allowed: SpecDecoder.dataKeys)

        var written: Located<String>?
        if let entry = view["dir"], !entry.value.isNull, let text = string(entry.value, name: "data.dir") {
            if text.value.isEmpty {
                report(.error(.outOfRange, "'data.dir' must not be empty", at: text.location))
            } else if text.value.unicodeScalars.contains("\0") {
                // The system ends a path at its first NUL: "a\0b" would silently become "a".
                report(.error(
                    .outOfRange, "'data.dir' \(quote(text.value)) contains a NUL character; a path cannot hold one",
                    at: text.location))
            } else {
                written = text
            }
        }
        var directory: Located<String>?
        var resolved = ""
        if let override {
            // The override comes from the command line: it replaces the spec's directory as given.
            directory = Located(override, at: written?.location ?? view.location)
            resolved = override
        } else if let written {
            directory = written
            resolved = SpecDecoder.resolve(written.value, relativeTo: file)
        } else if view["dir"]?.value.isNull ?? true {
            reportMissing("dir", in: view, example: "../data/mnist")
        }

        var mean: Located<Double>? = Located(0, at: view.location)
        var std: Located<Double>? = Located(1, at: view.location)
        if let entry = view["normalize"] {
            if let normalize = mapping(entry.value, path: "data.normalize", owner: entry.key.location) {
                checkKeys(normalize, allowed: SpecDecoder.normalizeKeys)
                mean = number(normalize, "mean", default: nil, in: .any, example: "0.5")
                std = number(
                    normalize, "std", default: nil, in: .positive,
                    float32: .normal(because: "the pixels are divided by it"), example: "0.5")
                if let givenMean = mean, let givenStd = std, !checkNormalizedPixelRange(mean: givenMean, std: givenStd) {
                    std = nil
                }
            } else {
                mean = nil
                std = nil
            }
        }
        let fraction = number(view, "validation_fraction", default: 0, in: .unitHalfOpen, example: "0.1")
        guard let directory, let mean, let std, let fraction else { return nil }
        return DataSpec(
            directory: directory, resolvedDirectory: resolved, mean: mean, std: std, validationFraction: fraction,
            location: view.location)
    }

    /// The gather kernel maps a pixel x in 0...255 to x * scale + shift in Float32, with
    /// scale = 1/(255 std) and shift = -mean/std computed from the Float32 mean and std. The pixels 0
    /// and 255 land on -mean/std and (1 - mean)/std: both must be finite in Float32, and the scale
    /// must stay a normal Float32, or every image becomes the same constant. Reports at `std`, the
    /// divisor, with a note at `mean`.
    private mutating func checkNormalizedPixelRange(mean: Located<Double>, std: Located<Double>) -> Bool {
        let floatMean = Double(Float(mean.value))
        let floatStd = Double(Float(std.value))
        let meanNote = DiagnosticNote("mean is \(shortNumber(mean.value)) here", at: mean.location)
        for (pixel, value) in [("0", -floatMean / floatStd), ("255", (1 - floatMean) / floatStd)] where !Float(value).isFinite {
            report(.error(
                .outOfRange,
                "'data.normalize' maps pixel \(pixel) to \(pixel == "0" ? "-mean/std" : "(1 - mean)/std") = \(approximateNumber(value)), beyond the largest float32 (\(largestFloat32Text))",
                at: std.location, notes: [meanNote]))
            return false
        }
        let scale = 1 / (255 * floatStd)
        guard Float(scale).isNormal else {
            report(.error(
                .outOfRange,
                "'data.normalize.std' \(shortNumber(std.value)) makes the pixel scale 1/(255 std) = \(approximateNumber(scale)), below the smallest normal float32 (\(smallestNormalFloat32Text)); every image would become the same constant",
                at: std.location))
            return false
        }
        return true
    }

    /// A relative data directory is relative to the spec file's folder, so a spec works from any
    /// working directory. The result is the folder joined with the directory, not normalised: `..`
    /// is left for the file system to follow, which is right when the folder is a symbolic link.
    static func resolve(_ directory: String, relativeTo specPath: String) -> String {
        if directory.hasPrefix("/") { return directory }
        guard let slash = specPath.lastIndex(of: "/") else { return directory }
        let folder = specPath[..<slash]
        if folder.isEmpty { return "/" + directory }
        return folder + "/" + directory
    }

    // MARK: loss

    private mutating func decodeLoss(_ root: MappingView) -> LossSpec? {
        guard let entry = root["loss"] else {
            reportMissing("loss", in: root, example: "cross_entropy")
            return nil
        }
        let choices = LossKind.allCases.map(\.rawValue)
        let hints = ["nll": "use 'cross_entropy' on logits: it includes the log-softmax"]
        let kindNode: YAMLNode
        if entry.value.scalar != nil {
            kindNode = entry.value
        } else {
            guard let view = mapping(entry.value, path: "loss", owner: entry.key.location) else { return nil }
            checkKeys(view, allowed: ["kind"])
            guard let kind = view["kind"] else {
                reportMissing("kind", in: view, example: "cross_entropy")
                return nil
            }
            kindNode = kind.value
        }
        guard let name = choice(kindNode, name: "loss", what: "loss", among: choices, code: .unknownLoss, hint: hints),
            let kind = LossKind(rawValue: name.value)
        else { return nil }
        return LossSpec(kind: Located(kind, at: name.location), location: entry.key.location)
    }

    /// A regressor (a table's number target) trains with mse, l1 or huber; a classifier with
    /// cross_entropy or mse on one-hot targets.
    private mutating func checkLossFitsTarget(data: DataSpec, loss: LossSpec) {
        let regression = data.table?.target.type.value == .number
        switch (loss.kind.value, regression) {
        case (.l1, false), (.huber, false):
            report(.error(
                .unknownLoss, "'\(loss.kind.value.rawValue)' is a regression loss; it needs a number target ('data.target' with 'type: number')",
                at: loss.kind.location, suggestion: "use 'cross_entropy' for classes"))
        case (.crossEntropy, true):
            let note = data.table.map { [DiagnosticNote("the target is a number here", at: $0.target.type.location)] } ?? []
            report(.error(
                .unknownLoss, "'cross_entropy' needs a category target; a number target makes a regressor (mse, l1 or huber)",
                at: loss.kind.location, notes: note, suggestion: "use 'mse'"))
        default: break
        }
    }

    // MARK: optimizer

    private mutating func decodeOptimizer(_ root: MappingView) -> OptimizerSpec? {
        guard let entry = root["optimizer"] else {
            reportMissing("optimizer", in: root, example: "{kind: adam, lr: 0.001}")
            return nil
        }
        let choices = OptimizerKind.allCases.map(\.rawValue)
        let view: MappingView
        var kindName: Located<String>?
        if entry.value.scalar != nil, !entry.value.isNull {
            // `optimizer: adam`: the kind alone, every option at its default.
            view = MappingView(path: "optimizer", location: entry.value.location, entries: [])
            kindName = choice(entry.value, name: "optimizer", what: "optimizer", among: choices, code: .unknownOptimizer)
        } else {
            guard let mapped = mapping(entry.value, path: "optimizer", owner: entry.key.location) else { return nil }
            view = mapped
            if let kind = view["kind"], !kind.value.isNull {
                kindName = choice(kind.value, name: "optimizer.kind", what: "optimizer", among: choices, code: .unknownOptimizer)
            } else {
                reportMissing("kind", in: view, example: "adam")
            }
        }
        let kind = kindName.flatMap { name in OptimizerKind(rawValue: name.value).map { Located($0, at: name.location) } }
        checkOptimizerKeys(view, kind: kind?.value)

        let isSGD = kind?.value == .sgd
        let lr = number(
            view, "lr", default: isSGD ? nil : 1e-3, in: .positive,
            float32: .normal(because: "every update is scaled by it"), example: "0.01")
        let momentum = number(view, "momentum", default: 0, in: .nonNegative, example: "0.9")
        let dampening = number(view, "dampening", default: 0, in: .unitClosed, example: "0")
        let nesterov = boolean(view, "nesterov", default: false)
        let betas = decodeBetas(view)
        let eps = number(
            view, "eps", default: 1e-8, in: .positive,
            float32: .normal(because: "Adam divides by sqrt(v) + eps, which is then 0 where a gradient stays 0"),
            example: "1e-8")
        let weightDecay = number(
            view, "weight_decay", default: kind?.value == .adamw ? 0.01 : 0, in: .nonNegative, example: "0")

        if isSGD, let momentum, let dampening, let nesterov {
            checkSGDOptions(view, momentum: momentum, dampening: dampening, nesterov: nesterov)
        }
        guard let kind, let lr, let momentum, let dampening, let nesterov, let betas, let eps, let weightDecay else {
            return nil
        }
        guard checkAdamCoefficients(view, kind: kind.value, lr: lr, beta1: betas.0, weightDecay: weightDecay) else {
            return nil
        }
        return OptimizerSpec(
            kind: kind, lr: lr, momentum: momentum, dampening: dampening, nesterov: nesterov, beta1: betas.0,
            beta2: betas.1, eps: eps, weightDecay: weightDecay, location: view.location)
    }

    /// Adam and AdamW round coefficients derived from the options to Float32 (torch.optim's way, see
    /// KernelSource/Optimizers.swift): the first step's size lr / (1 - beta1) (later steps' are
    /// smaller) and AdamW's decay factor 1 - lr * weight_decay. Each must be finite in Float32.
    private mutating func checkAdamCoefficients(
        _ view: MappingView, kind: OptimizerKind, lr: Located<Double>, beta1: Located<Double>,
        weightDecay: Located<Double>
    ) -> Bool {
        guard kind != .sgd else { return true }
        let stepSize = lr.value / (1 - beta1.value)
        if !Float(stepSize).isFinite {
            let notes = view["betas"] == nil ? [] : [DiagnosticNote("beta1 is \(shortNumber(beta1.value)) here", at: beta1.location)]
            report(.error(
                .outOfRange,
                "'optimizer.lr' \(shortNumber(lr.value)) makes \(kind.rawValue)'s first step size lr / (1 - beta1) = \(shortNumber(lr.value)) / (1 - \(shortNumber(beta1.value))) = \(approximateNumber(stepSize)), beyond the largest float32 (\(largestFloat32Text))",
                at: lr.location, notes: notes))
            return false
        }
        let decayFactor = 1 - lr.value * weightDecay.value
        if kind == .adamw, !Float(decayFactor).isFinite {
            report(.error(
                .outOfRange,
                "'optimizer.weight_decay' \(shortNumber(weightDecay.value)) makes adamw's decay factor 1 - lr * weight_decay = \(approximateNumber(decayFactor)), beyond the largest float32 (\(largestFloat32Text))",
                at: weightDecay.location, notes: [DiagnosticNote("lr is \(shortNumber(lr.value)) here", at: lr.location)]))
            return false
        }
        return true
    }

    /// Options of the other optimizer get their own message: they are real options, just not here.
    private mutating func checkOptimizerKeys(_ view: MappingView, kind: OptimizerKind?) {
        guard let kind else {
            checkKeys(view, allowed: Array(Set(SpecDecoder.sgdKeys + SpecDecoder.adamKeys)).sorted())
            return
        }
        let allowed = kind == .sgd ? SpecDecoder.sgdKeys : SpecDecoder.adamKeys
        let others = kind == .sgd ? SpecDecoder.adamKeys : SpecDecoder.sgdKeys
        var unknown: [YAMLNode.Entry] = []
        for entry in view.entries where !allowed.contains(entry.key.value) {
            if others.contains(entry.key.value) {
                let owner = kind == .sgd ? "adam and adamw" : "sgd"
                report(.error(
                    .optionOfOtherOptimizer,
                    "'\(entry.key.value)' is not an option of \(kind.rawValue); it belongs to \(owner)",
                    at: entry.key.location,
                    notes: [DiagnosticNote("\(kind.rawValue) accepts \(allowed.map { "'\($0)'" }.joined(separator: ", "))")]))
            } else {
                unknown.append(entry)
            }
        }
        checkKeys(MappingView(path: view.path, location: view.location, entries: unknown), allowed: allowed)
    }

    private mutating func decodeBetas(_ view: MappingView) -> (Located<Double>, Located<Double>)? {
        guard let entry = view["betas"], !entry.value.isNull else {
            return (Located(0.9, at: view.location), Located(0.999, at: view.location))
        }
        guard case .sequence(let items) = entry.value.content, items.count == 2 else {
            let found: String
            if case .sequence(let items) = entry.value.content {
                found = "a list of \(items.count)"
            } else {
                found = entry.value.shortDescription
            }
            report(.error(
                .wrongType, "expected a list of two numbers for 'optimizer.betas' such as [0.9, 0.999], found \(found)",
                at: entry.value.location))
            return nil
        }
        let beta1 = number(items[0], name: "optimizer.betas[0]", in: .unitHalfOpen)
        let beta2 = number(items[1], name: "optimizer.betas[1]", in: .unitHalfOpen)
        guard let beta1, let beta2 else { return nil }
        return (beta1, beta2)
    }

    /// PyTorch's rules: Nesterov momentum needs a momentum and zero dampening; dampening without
    /// momentum does nothing.
    private mutating func checkSGDOptions(
        _ view: MappingView, momentum: Located<Double>, dampening: Located<Double>, nesterov: Located<Bool>
    ) {
        if nesterov.value, momentum.value <= 0 || dampening.value != 0 {
            var notes: [DiagnosticNote] = []
            if momentum.value <= 0 {
                let given = view["momentum"] == nil ? " (the default)" : ""
                notes.append(DiagnosticNote("momentum is \(momentum.value)\(given)", at: momentum.location))
            }
            if dampening.value != 0 {
                notes.append(DiagnosticNote("dampening is \(dampening.value)", at: dampening.location))
            }
            report(.error(
                .nesterovConditions, "Nesterov momentum requires momentum > 0 and dampening = 0", at: nesterov.location,
                notes: notes))
        }
        if view["dampening"] != nil, dampening.value > 0, momentum.value == 0 {
            report(.warning(
                .dampeningWithoutMomentum, "'optimizer.dampening' has no effect without momentum", at: dampening.location,
                suggestion: "set 'momentum' or remove 'dampening'"))
        }
    }

    // MARK: training

    private mutating func decodeTraining(_ root: MappingView) -> TrainingSpec? {
        guard let view = section(root, "training", example: "{batch_size: 64, epochs: 10}") else { return nil }
        checkKeys(view, allowed: SpecDecoder.trainingKeys)
        let batchSize = integer(view, "batch_size", default: nil, in: 1...SpecDecoder.maximumBatchSize, example: "64")
        let epochs = integer(view, "epochs", default: nil, in: 1...SpecDecoder.maximumEpochs, example: "10")
        let shuffle = boolean(view, "shuffle", default: true)
        let dropLast = boolean(view, "drop_last", default: false)
        var threads: Located<Int>?
        var threadsValid = true
        if let entry = view["threads"], !entry.value.isNull {
            threads = integer(entry.value, name: "training.threads", in: 1...SpecDecoder.maximumThreads)
            threadsValid = threads != nil
        }
        let evalBatchSize = integer(
            view, "eval_batch_size", default: 1000, in: 1...SpecDecoder.maximumBatchSize, example: "1000")
        guard let batchSize, let epochs, let shuffle, let dropLast, threadsValid, let evalBatchSize else { return nil }
        return TrainingSpec(
            batchSize: batchSize, epochs: epochs, shuffle: shuffle, dropLast: dropLast, threads: threads,
            evalBatchSize: evalBatchSize, location: view.location)
    }
}

func isAlphanumeric(_ byte: UInt8) -> Bool {
    (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
}
