import KernelInterface
import SpecParser

/// Matrix products smaller than this run on one thread: handing work to another core costs more. The
/// reference MLP's second layer (1.05 MFLOP a product) gained from two threads, about a third of its
/// time; its third (82 KFLOP) would not.
let parallelThresholdFlops = 500_000
/// Parameter tensors start on 16-float (64-byte) boundaries inside the parameter block.
let parameterAlignmentFloats = 16
let arenaAlignmentBytes = 64

/// Spec -> Plan: shape inference, fusion, the kernel lists of a training and an evaluation step, liveness,
/// arena offsets and matmul tiles. A pure function; problems come back as diagnostics.
public func makePlan(_ spec: Spec, target: Target) -> (plan: Plan?, diagnostics: [Diagnostic]) {
    var diagnostics: [Diagnostic] = []
    guard let graph = buildModelGraph(spec, diagnostics: &diagnostics) else { return (nil, diagnostics) }
    var builder = PlanBuilder(spec: spec, target: target, graph: graph)
    var plan = builder.build()
    addBatchPrefetch(&plan)
    addLiveFirstFeatures(&plan)
    allocateArena(&plan)
    diagnostics += resourceDiagnostics(plan, spec: spec)
    return (plan, diagnostics)
}

struct PlanBuilder {
    let spec: Spec
    let target: Target
    let graph: ModelGraph
    let batch: Int
    let evalBatch: Int

    var buffers: [String: Buffer] = [:]
    var bufferOrder: [String] = []
    var parameters: [ParameterTensor] = []
    var parameterBlockFloats = 0
    var workspaceFloatsPerThread = 0
    /// The linear layer that reads the gathered batch directly and absorbs the normalization's shift.
    var shiftedLayer: String? = nil

    init(spec: Spec, target: Target, graph: ModelGraph) {
        self.spec = spec
        self.target = target
        self.graph = graph
        self.batch = spec.training.batchSize.value
        self.evalBatch = spec.training.evalBatchSize.value
    }

    mutating func declare(_ name: String, _ role: Buffer.Role, _ type: ElementType, shape: [Int]) -> Slice {
        let elements = shape.reduce(1, *)
        if buffers[name] == nil {
            buffers[name] = Buffer(
                name: name, role: role, elementType: type, shape: shape, elements: elements, offset: 0, firstUse: 0,
                lastUse: 0)
            bufferOrder.append(name)
        }
        return Slice(buffer: name, offset: 0, elements: elements, shape: shape)
    }

    /// A view of `slice` with another shape (flatten, or the in-place output of a kernel).
    func view(_ slice: Slice, shape: [Int]) -> Slice {
        Slice(buffer: slice.buffer, offset: slice.offset, elements: shape.reduce(1, *), shape: shape)
    }

    func matmul(m: Int, n: Int, k: Int) -> MatmulShape {
        let tile = MatmulTile.choose(m: m, n: n, k: k, isa: target.isa, l2Bytes: target.l2Bytes)
        let threads = 2 * m * n * k >= parallelThresholdFlops ? max(1, target.threads) : 1
        return MatmulShape(m: m, n: n, k: k, tile: tile, threads: threads)
    }

    /// `extra`: scratch a kernel needs beyond the product's packing (the shifted-input layer's).
    mutating func noteWorkspace(_ shape: MatmulShape, extra: Int = 0) {
        workspaceFloatsPerThread = max(
            workspaceFloatsPerThread, MatmulTile.workspaceFloats(shape.tile, m: shape.m, n: shape.n, k: shape.k) + extra)
    }

    mutating func build() -> Plan {
        // Parameters: one block, each tensor padded to 16 floats; gradients and moments share the layout.
        for op in graph.operations {
            guard case .linear(let inF, let outF, let hasBias, _, let initialization) = op.kind else { continue }
            let storedWeight = WeightPanels.storedFloats(outFeatures: outF, inFeatures: inF)
            parameters.append(
                ParameterTensor(
                    name: "\(op.name).weight", layer: op.name, role: .weight, shape: [outF, inF], offset: parameterBlockFloats,
                    count: inF * outF, storedCount: storedWeight, fanIn: inF, fanOut: outF, initialization: initialization,
                    location: op.location))
            parameterBlockFloats += roundUp(storedWeight, parameterAlignmentFloats)
            if hasBias {
                parameters.append(
                    ParameterTensor(
                        name: "\(op.name).bias", layer: op.name, role: .bias, shape: [outF], offset: parameterBlockFloats,
                        count: outF, storedCount: outF, fanIn: inF, fanOut: outF, initialization: initialization, location: op.location))
                parameterBlockFloats += roundUp(outF, parameterAlignmentFloats)
            }
        }
        let paramsBlock = declare("parameters", .parameters, .float32, shape: [parameterBlockFloats])
        let gradsBlock = declare("gradients", .gradients, .float32, shape: [parameterBlockFloats])
        let settings = optimizerSettings()
        var stateBlocks: [Slice] = []
        for i in 0..<settings.stateBlocks {
            let name = settings.kind == .sgd ? "momentum_buffer" : (i == 0 ? "exp_avg" : "exp_avg_sq")
            stateBlocks.append(declare(name, .optimizerState, .float32, shape: [parameterBlockFloats]))
        }

        let features = graph.inputShape.reduce(1, *)
        let classes = graph.outputShape.reduce(1, *)
        var train: [Kernel] = []
        var eval: [Kernel] = []

        // ---- training step: forward ----
        let input = declare("input", .input, .float32, shape: [batch, features])
        let labels = declare("labels", .labels, .int32, shape: [batch])
        train.append(.gatherBatch(input: input, labels: labels, mean: spec.data.mean.value, std: spec.data.std.value))
        var values: [Slice] = [input]  // values[i] is the input of operation i
        var preactivations: [Int: Slice] = [:]  // operation index -> its stored pre-activation
        var masks: [Int: Slice] = [:]
        for (index, op) in graph.operations.enumerated() {
            let x = values[index]
            switch op.kind {
            case .flatten:
                values.append(view(x, shape: [batch] + op.outputShape))
            case .linear(let inF, let outF, _, let activation, _):
                let y = declare("\(op.name).out", .activation, .float32, shape: [batch, outF])
                var pre: Slice? = nil
                if activation.needsPreactivation {
                    pre = declare("\(op.name).preact", .preactivation, .float32, shape: [batch, outF])
                    preactivations[index] = pre
                }
                let shape = matmul(m: batch, n: outF, k: inF)
                if x.buffer == input.buffer && shiftedLayer == nil { shiftedLayer = op.name }
                noteWorkspace(shape, extra: shiftedLayer == op.name ? shiftedForwardScratchFloats(m: batch, n: outF, k: inF) : 0)
                train.append(
                    .linearForward(
                        layer: op.name, input: view(x, shape: [batch, inF]), weight: weightSlice(op.name, paramsBlock),
                        bias: biasSlice(op.name, paramsBlock), output: y, preactivation: pre, activation: activation,
                        matmul: shape, source: op.location))
                values.append(y)
            case .activation(let activation):
                let y = declare("\(op.name).out", .activation, .float32, shape: x.shape)
                train.append(.activationForward(layer: op.name, input: x, output: y, activation: activation, source: op.location))
                if activation.needsPreactivation { preactivations[index] = x }
                values.append(y)
            case .dropout(let p):
                let y = declare("\(op.name).out", .activation, .float32, shape: x.shape)
                let mask = declare("\(op.name).mask", .mask, .float32, shape: x.shape)
                masks[index] = mask
                train.append(.dropoutForward(layer: op.name, input: x, output: y, mask: mask, p: p, source: op.location))
                values.append(y)
            }
        }

        // ---- loss ----
        let logits = values[graph.operations.count]
        let lossGradient = declare("d_\(logits.buffer)", .activationGradient, .float32, shape: logits.shape)
        switch spec.loss.kind.value {
        case .crossEntropy:
            let rowLoss = declare("row_loss", .lossScratch, .float32, shape: [batch])
            train.append(
                .softmaxCrossEntropy(
                    logits: logits, labels: labels, gradient: lossGradient, rowLoss: rowLoss, source: spec.loss.location))
        case .mse:
            train.append(.meanSquaredError(output: logits, labels: labels, gradient: lossGradient, source: spec.loss.location))
        }

        // ---- backward ----
        // The first operation with parameters: values before it need no gradient.
        let firstTrainable = graph.operations.firstIndex { if case .linear = $0.kind { return true } else { return false } } ?? 0
        var gradient = lossGradient
        // Whether `gradient` is already taken with respect to the pre-activation of the operation that produced
        // the value (the derivative was fused into the product that computed it).
        var throughActivation = false
        for index in stride(from: graph.operations.count - 1, through: 0, by: -1) {
            let op = graph.operations[index]
            let x = values[index]
            let needsInputGradient = index > firstTrainable
            switch op.kind {
            case .flatten:
                gradient = view(gradient, shape: x.shape)
            case .linear(let inF, let outF, _, let activation, _):
                if !activation.isIdentity && !throughActivation {
                    let d = view(gradient, shape: gradient.shape)
                    train.append(
                        .activationBackward(
                            layer: op.name, outputGradient: gradient, preactivation: preactivations[index], output: values[index + 1],
                            inputGradient: d, activation: activation, source: op.activationLocation ?? op.location))
                }
                let weightsShape = matmul(m: inF, n: outF, k: batch)
                noteWorkspace(
                    weightsShape, extra: shiftedLayer == op.name ? shiftedWeightGradientScratchFloats(m: batch, n: outF, k: inF) : 0)
                train.append(
                    .linearBackwardWeights(
                        layer: op.name, input: view(x, shape: [batch, inF]), outputGradient: gradient,
                        weightGradient: weightSlice(op.name, gradsBlock), biasGradient: biasSlice(op.name, gradsBlock),
                        matmul: weightsShape, source: op.location))
                throughActivation = false
                if needsInputGradient {
                    let inputGradient = declare("d_\(x.buffer)", .activationGradient, .float32, shape: [batch, inF])
                    // Fuse the derivative of the activation that produced x into this product.
                    var producerActivation = ActivationFunction.identity
                    var producerPre: Slice? = nil
                    if index > 0 {
                        switch graph.operations[index - 1].kind {
                        case .linear(_, _, _, let act, _): producerActivation = act
                        case .activation(let act): producerActivation = act
                        case .flatten, .dropout: break
                        }
                        producerPre = producerActivation.needsPreactivation ? preactivations[index - 1] : nil
                    }
                    let inputShape = matmul(m: batch, n: inF, k: outF)
                    noteWorkspace(inputShape)
                    train.append(
                        .linearBackwardInput(
                            layer: op.name, outputGradient: gradient, weight: weightSlice(op.name, paramsBlock),
                            inputGradient: inputGradient, producerActivation: producerActivation,
                            producerOutput: view(x, shape: [batch, inF]), producerPreactivation: producerPre, matmul: inputShape,
                            source: op.location))
                    gradient = view(inputGradient, shape: x.shape)
                    throughActivation = !producerActivation.isIdentity
                }
            case .activation(let activation):
                guard needsInputGradient else { break }
                if !throughActivation {
                    train.append(
                        .activationBackward(
                            layer: op.name, outputGradient: gradient, preactivation: preactivations[index], output: values[index + 1],
                            inputGradient: gradient, activation: activation, source: op.location))
                }
                throughActivation = false
            case .dropout:
                guard needsInputGradient, let mask = masks[index] else { break }
                train.append(
                    .dropoutBackward(layer: op.name, outputGradient: gradient, mask: mask, inputGradient: gradient, source: op.location))
                throughActivation = false
            }
            if !needsInputGradient { break }
        }

        train.append(
            .optimizerStep(
                parameters: paramsBlock, gradients: gradsBlock, state: stateBlocks, settings: settings,
                source: spec.optimizer.location))

        // ---- evaluation: forward only, dropout off, its own batch size ----
        let evalInput = declare("eval.input", .input, .float32, shape: [evalBatch, features])
        let evalLabels = declare("eval.labels", .labels, .int32, shape: [evalBatch])
        eval.append(.gatherBatch(input: evalInput, labels: evalLabels, mean: spec.data.mean.value, std: spec.data.std.value))
        var x = evalInput
        for op in graph.operations {
            switch op.kind {
            case .flatten, .dropout:
                x = view(x, shape: [evalBatch] + op.outputShape)
            case .linear(let inF, let outF, _, let activation, _):
                let y = declare("eval.\(op.name).out", .activation, .float32, shape: [evalBatch, outF])
                let shape = matmul(m: evalBatch, n: outF, k: inF)
                noteWorkspace(shape, extra: shiftedLayer == op.name ? shiftedForwardScratchFloats(m: evalBatch, n: outF, k: inF) : 0)
                eval.append(
                    .linearForward(
                        layer: op.name, input: view(x, shape: [evalBatch, inF]), weight: weightSlice(op.name, paramsBlock),
                        bias: biasSlice(op.name, paramsBlock), output: y, preactivation: nil, activation: activation, matmul: shape,
                        source: op.location))
                x = y
            case .activation(let activation):
                let y = declare("eval.\(op.name).out", .activation, .float32, shape: x.shape)
                eval.append(.activationForward(layer: op.name, input: x, output: y, activation: activation, source: op.location))
                x = y
            }
        }
        let predictions = declare("eval.predictions", .predictions, .int32, shape: [evalBatch])
        eval.append(.classify(logits: x, predictions: predictions))

        _ = declare("workspace", .workspace, .float32, shape: [max(1, target.threads), max(workspaceFloatsPerThread, 1)])

        var fusions = graph.fusions
        fusions.append("softmax, cross-entropy and its gradient computed in one pass over the logits")
        for kernel in train {
            if case .linearBackwardInput(let layer, _, _, _, let act, _, _, _, _) = kernel, !act.isIdentity {
                fusions.append("\(act.code) derivative fused into \(layer).grad_input")
            }
            if case .linearBackwardWeights(let layer, _, _, _, let bias?, _, _) = kernel {
                _ = bias
                fusions.append("\(layer).bias gradient fused with \(layer).weight gradient")
            }
        }
        fusions.append("one \(settings.kind.rawValue) kernel updates all \(parameters.count) parameter tensors (contiguous blocks)")

        if let shiftedLayer {
            fusions.append(
                "the input normalization's shift is folded into \(shiftedLayer): the gather writes pixel * scale (exactly 0 for "
                    + "a zero pixel) and \(shiftedLayer) adds shift * its weights' column sums, so its products skip zero pixels")
        }
        var plan = Plan(
            specName: spec.name.value, target: target, batchSize: batch, evalBatchSize: evalBatch, inputFeatures: features,
            inputShape: graph.inputShape, classes: classes, layers: graph.summaries, parameters: parameters,
            parameterBlockFloats: parameterBlockFloats, buffers: bufferOrder.compactMap { buffers[$0] }, trainKernels: train,
            evalKernels: eval, arenaBytes: 0, optimizer: settings, loss: spec.loss.kind.value, fusions: fusions)
        plan.shiftedInput = shiftedLayer.map { ShiftedInput(layer: $0) }
        return plan
    }

    func weightSlice(_ layer: String, _ block: Slice) -> Slice {
        let tensor = parameters.first { $0.name == "\(layer).weight" }!
        // Stored in panels of 32 output features: [panels, in, 32].
        return Slice(
            buffer: block.buffer, offset: block.offset + tensor.offset * 4, elements: tensor.storedCount,
            shape: [WeightPanels.panels(outFeatures: tensor.shape[0]), tensor.shape[1], weightPanelWidth])
    }

    func biasSlice(_ layer: String, _ block: Slice) -> Slice? {
        guard let tensor = parameters.first(where: { $0.name == "\(layer).bias" }) else { return nil }
        return Slice(buffer: block.buffer, offset: block.offset + tensor.offset * 4, elements: tensor.count, shape: tensor.shape)
    }

    func optimizerSettings() -> OptimizerSettings {
        let o = spec.optimizer
        let kind = o.kind.value
        let stateBlocks: Int
        switch kind {
        case .sgd: stateBlocks = o.momentum.value != 0 ? 1 : 0
        case .adam, .adamw: stateBlocks = 2
        }
        return OptimizerSettings(
            kind: kind, lr: o.lr.value, momentum: o.momentum.value, dampening: o.dampening.value, nesterov: o.nesterov.value,
            beta1: o.beta1.value, beta2: o.beta2.value, eps: o.eps.value, weightDecay: o.weightDecay.value,
            stateBlocks: stateBlocks)
    }
}

func roundUp(_ value: Int, _ multiple: Int) -> Int { (value + multiple - 1) / multiple * multiple }
