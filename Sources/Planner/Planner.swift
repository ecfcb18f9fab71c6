import KernelInterface
import SpecParser

/// Matrix products smaller than this run on one thread: handing work to another core costs more. The
/// reference MLP's second layer (1.05 MFLOP a product) gained from two threads, about a third of its
/// time; its third (82 KFLOP) would not.
let parallelThresholdFlops = 500_000

/// Threads for a kernel of `flops` whose work splits into `units` independent parts, on a target of
/// `available` threads.
func partThreads(flops: Int, units: Int, available: Int) -> Int {
    flops >= parallelThresholdFlops ? max(1, min(available, units)) : 1
}
/// Parameter tensors start on 16-float (64-byte) boundaries inside the parameter block.
let parameterAlignmentFloats = 16
let arenaAlignmentBytes = 64

/// Spec -> Plan: shape inference and fusion (`buildModelGraph`), the kernels each layer emits for a
/// training and an evaluation step, the optional passes (`PlanPass`), liveness, arena offsets and
/// matmul tiles. A pure function; problems come back as diagnostics. The one pipeline from a spec to
/// a plan: the command line and model files both call it.
public func makePlan(_ spec: Spec, target: Target, options: PlanOptions = PlanOptions()) -> (plan: Plan?, diagnostics: [Diagnostic]) {
    var diagnostics: [Diagnostic] = []
    guard let graph = buildModelGraph(spec, diagnostics: &diagnostics) else { return (nil, diagnostics) }
    var builder = PlanBuilder(spec: spec, target: target, graph: graph, ranks: options.ranks)
    var plan = builder.build(options: options)
    runPasses(&plan)
    allocateArena(&plan)
    assert(verify(plan).isEmpty, "the planner made an invalid plan: \(verify(plan))")
    diagnostics += resourceDiagnostics(plan, spec: spec)
    return (plan, diagnostics)
}

/// Accumulates the buffers and kernels of a plan while each layer emits its own (Layers/*.swift).
struct PlanBuilder {
    let spec: Spec
    let target: Target
    let graph: ModelGraph
    let batch: Int
    let evalBatch: Int

    var buffers: [String: Buffer] = [:]
    var bufferOrder: [String] = []
    var parameters: [ParameterTensor] = []
    /// Tensor name -> tensor (the first, were a name repeated), so that each layer finds its slices
    /// without a scan.
    var parameterByName: [String: ParameterTensor] = [:]
    var parameterBlockFloats = 0
    var workspaceFloatsPerThread = 0
    var train: [Kernel] = []
    var eval: [Kernel] = []
    var modelState: [StateTensor] = []
    var modelStateByName: [String: StateTensor] = [:]
    var modelStateFloats = 0
    var modelStateBlock = Slice(buffer: "", offset: 0, elements: 0, shape: [])
    var parameterBlock = Slice(buffer: "", offset: 0, elements: 0, shape: [])
    var gradientBlock = Slice(buffer: "", offset: 0, elements: 0, shape: [])

    /// Processes sharing each batch; a step's buffers hold one rank's share (the largest).
    let ranks: Int

    init(spec: Spec, target: Target, graph: ModelGraph, ranks: Int = 1) {
        self.spec = spec
        self.target = target
        self.graph = graph
        self.ranks = max(1, ranks)
        self.batch = (spec.training.batchSize.value + self.ranks - 1) / self.ranks
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

    mutating func noteWorkspace(_ shape: MatmulShape) {
        workspaceFloatsPerThread = max(workspaceFloatsPerThread, MatmulTile.workspaceFloats(shape.tile, m: shape.m, n: shape.n, k: shape.k))
    }

    mutating func build(options: PlanOptions) -> Plan {
        // Parameters: one block, each tensor padded to 16 floats; gradients and moments share the layout.
        var tensors: [ParameterTensor] = []
        for layer in graph.layers { tensors += layer.parameters(offset: &parameterBlockFloats) }
        parameters = tensors
        parameterByName = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        parameterBlock = declare("parameters", .parameters, .float32, shape: [parameterBlockFloats])
        for layer in graph.layers { modelState += layer.stateTensors(offset: &modelStateFloats) }
        // With several ranks the step's allreduce sums the gradient block and a trailer after it, in one
        // buffer: the trailer's 16 floats, then the model state (batch norm's running statistics), whose
        // sum over the ranks divided by their number keeps every rank's statistics the same.
        let stateInTrailer = (modelStateFloats + 15) / 16 * 16
        let trailer = ranks > 1 ? DataParallel.trailerFloats + stateInTrailer : 0
        gradientBlock = view(
            declare("gradients", .gradients, .float32, shape: [parameterBlockFloats + trailer]), shape: [parameterBlockFloats])
        let settings = optimizerSettings()
        let stateBlocks = settings.stateNames.map { declare($0, .optimizerState, .float32, shape: [parameterBlockFloats]) }
        modelStateByName = Dictionary(modelState.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        if modelStateFloats > 0 {
            modelStateBlock = declare("model_state", .modelState, .float32, shape: [modelStateFloats])
        }

        let features = graph.inputShape.reduce(1, *)
        let classes = graph.outputShape.reduce(1, *)
        var normalization = PixelNormalization(mean: Float(spec.data.mean.value), standardDeviation: Float(spec.data.std.value))
        // A table's rows arrive encoded (standardized, one-hot) as float32: the gather copies them as they are.
        let sampleElement: SampleElement = spec.data.table == nil ? .uint8 : .float32
        if sampleElement == .float32 {
            normalization.scale = 1
            normalization.shift = 0
        }

        // ---- training step: forward ----
        let input = declare("input", .input, .float32, shape: [batch, features])
        let labels = declare("labels", .labels, .int32, shape: [batch])
        var trainGather = GatherBatch(input: input, labels: labels, normalization: normalization, threads: gatherThreads(input))
        trainGather.element = sampleElement
        // A regressor's targets are values: gathered beside the (unused) labels, as float32 rows.
        let regressionTargets = spec.data.table?.target.type.value == .number ? graph.outputShape.reduce(1, *) : nil
        if let width = regressionTargets { trainGather.targets = declare("targets", .labels, .float32, shape: [batch, width]) }
        train.append(.gatherBatch(trainGather))
        var values: [Slice] = [input]  // values[i] is the input of layer i
        var forward = ForwardContext()
        for (index, layer) in graph.layers.enumerated() {
            forward.index = index
            values.append(layer.forward(&self, values[index], context: &forward))
        }

        // ---- loss ----
        let logits = values[graph.layers.count]
        let lossGradient = declare("d_\(logits.buffer)", .activationGradient, .float32, shape: logits.shape)
        switch spec.loss.kind.value {
        case _ where trainGather.targets != nil:
            train.append(
                .regressionLoss(
                    RegressionLoss(
                        kind: spec.loss.kind.value, delta: 1, output: logits, targets: trainGather.targets!, gradient: lossGradient,
                        location: spec.loss.location)))
        case .l1, .huber:
            preconditionFailure("the spec decoder allows l1 and huber only for a regressor")
        case .crossEntropy:
            let rowLoss = declare("row_loss", .lossScratch, .float32, shape: [batch])
            train.append(
                .softmaxCrossEntropy(
                    SoftmaxCrossEntropy(logits: logits, labels: labels, gradient: lossGradient, rowLoss: rowLoss, location: spec.loss.location)))
        case .mse:
            train.append(.meanSquaredError(MeanSquaredError(output: logits, labels: labels, gradient: lossGradient, location: spec.loss.location)))
        }

        // ---- backward ----
        // The first layer with parameters: values before it need no gradient.
        let firstTrainable = graph.layers.firstIndex { $0.isTrainable } ?? 0
        var backward = BackwardContext(
            forward: forward, values: values, layers: graph.layers, index: graph.layers.count - 1, needsInputGradient: false,
            gradient: lossGradient)
        for index in stride(from: graph.layers.count - 1, through: 0, by: -1) {
            backward.index = index
            backward.needsInputGradient = index > firstTrainable
            graph.layers[index].backward(&self, context: &backward)
            if !backward.needsInputGradient { break }
        }

        let optimizerThreads = parameterBlockFloats >= Plan.parallelOptimizerFloats ? max(1, target.threads) : 1
        train.append(
            .optimizerStep(
                OptimizerStep(
                    parameters: parameterBlock, gradients: gradientBlock, state: stateBlocks, settings: settings,
                    threads: optimizerThreads, location: spec.optimizer.location)))

        // ---- evaluation: forward only, dropout off, its own batch size ----
        let evalInput = declare("eval.input", .input, .float32, shape: [evalBatch, features])
        let evalLabels = declare("eval.labels", .labels, .int32, shape: [evalBatch])
        var evalGather = GatherBatch(input: evalInput, labels: evalLabels, normalization: normalization, threads: gatherThreads(evalInput))
        evalGather.element = sampleElement
        if let width = regressionTargets { evalGather.targets = declare("eval.targets", .labels, .float32, shape: [evalBatch, width]) }
        eval.append(.gatherBatch(evalGather))
        var x = evalInput
        for layer in graph.layers { x = layer.evaluate(&self, x) }
        let predictions = declare("eval.predictions", .predictions, .int32, shape: [evalBatch])
        eval.append(.classify(Classify(logits: x, predictions: predictions)))

        _ = declare("workspace", .workspace, .float32, shape: [max(1, target.threads), max(workspaceFloatsPerThread, 1)])

        var fusions = graph.fusions
        if regressionTargets == nil { fusions.append("softmax, cross-entropy and its gradient computed in one pass over the logits") }
        for kernel in train {
            if case .linearBackwardInput(let k) = kernel, !k.producerActivation.isIdentity {
                fusions.append("\(k.producerActivation.code) derivative fused into \(k.layer).grad_input")
            }
            if case .linearBackwardWeights(let k) = kernel, k.biasGradient != nil {
                fusions.append("\(k.layer).bias gradient fused with \(k.layer).weight gradient")
            }
        }
        fusions.append("one \(settings.kind.rawValue) kernel updates all \(parameters.count) parameter tensors (contiguous blocks)")

        for kernel in train {
            if case .conv2dForward(let k) = kernel, k.bias != nil || !k.activation.isIdentity {
                let epilogue = [k.bias == nil ? nil : "bias", k.activation.isIdentity ? nil : "\(k.activation.code)"].compactMap { $0 }
                fusions.append("\(k.layer): \(epilogue.joined(separator: " and ")) applied in the convolution's epilogue")
            }
        }

        let schedule = TrainingSchedule(
            shuffle: spec.training.shuffle.value, dropLast: spec.training.dropLast.value,
            validationFraction: spec.data.validationFraction.value)
        var plan = Plan(
            specName: spec.name.value, target: target, batchSize: batch, evalBatchSize: evalBatch, inputFeatures: features,
            inputShape: graph.inputShape, classes: classes, layers: graph.summaries, parameters: parameters,
            parameterBlockFloats: parameterBlockFloats, buffers: bufferOrder.compactMap { buffers[$0] }, trainKernels: train,
            evalKernels: eval, arenaBytes: 0, optimizer: settings, loss: spec.loss.kind.value, fusions: fusions,
            data: DataSource(format: spec.data.table == nil ? .idx : .csv, directory: spec.data.resolvedDirectory), schedule: schedule, options: options,
            modelState: modelState, modelStateFloats: modelStateFloats)
        if ranks > 1 {
            plan.dataParallel = DataParallel(
                ranks: ranks, globalBatchSize: spec.training.batchSize.value, allreduceFloats: parameterBlockFloats + trailer,
                trailerOffset: parameterBlockFloats, allreducesPerStep: 1,
                modelStateOffset: modelStateFloats > 0 ? parameterBlockFloats + DataParallel.trailerFloats : nil)
        }
        return plan
    }

    func gatherThreads(_ input: Slice) -> Int {
        input.elements >= Plan.parallelGatherElements ? max(1, target.threads) : 1
    }

    /// The slice of `layer`'s weight in the parameter block (or, with `in:`, in the gradient block).
    func weightSlice(_ layer: String, in block: Slice? = nil) -> Slice {
        let block = block ?? parameterBlock
        let tensor = parameterByName["\(layer).weight"]!
        // Stored in panels of 32 output features: [panels, in, 32].
        return Slice(
            buffer: block.buffer, offset: block.offset + tensor.offset * 4, elements: tensor.storedCount,
            shape: [WeightPanels.panels(outFeatures: tensor.shape[0]), tensor.shape[1], weightPanelWidth])
    }

    /// The slice of parameter tensor `name` as stored (row-major), in the parameter block or `block`.
    func tensorSlice(_ name: String, in block: Slice? = nil) -> Slice? {
        let block = block ?? parameterBlock
        guard let tensor = parameterByName[name] else { return nil }
        return Slice(buffer: block.buffer, offset: block.offset + tensor.offset * 4, elements: tensor.count, shape: tensor.shape)
    }

    /// The slice of model-state tensor `name` (batch norm's running statistics).
    func stateSlice(_ name: String) -> Slice {
        let tensor = modelStateByName[name]!
        return Slice(
            buffer: modelStateBlock.buffer, offset: modelStateBlock.offset + tensor.offset * 4, elements: tensor.count,
            shape: tensor.shape.isEmpty ? [1] : tensor.shape)
    }

    /// Notes a per-thread workspace need of `floats` floats.
    mutating func noteWorkspace(floats: Int) {
        workspaceFloatsPerThread = max(workspaceFloatsPerThread, floats)
    }

    /// Threads for a kernel of `flops` whose work splits into `units` independent parts.
    func threads(flops: Int, units: Int) -> Int {
        partThreads(flops: flops, units: units, available: target.threads)
    }

    func biasSlice(_ layer: String, in block: Slice? = nil) -> Slice? {
        let block = block ?? parameterBlock
        guard let tensor = parameterByName["\(layer).bias"] else { return nil }
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

