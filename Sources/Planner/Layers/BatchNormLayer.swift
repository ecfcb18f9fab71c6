import KernelInterface
import SpecParser

/// `batch_norm: {eps, momentum, affine}`: PyTorch's BatchNorm1d after a linear ([features]) and
/// BatchNorm2d after a convolution ([C, H, W]): batch statistics in training (updating running_mean,
/// running_var with the unbiased variance, and num_batches_tracked), the running ones in evaluation.
struct BatchNormLayer: PlannedLayer {
    var name: String
    var location: SourceLocation
    var outputShape: [Int]
    var geometry: BatchNormGeometry
    var affine: Bool

    var isTrainable: Bool { affine }

    static func infer(_ layer: LayerSpec, _ spec: BatchNormSpec, into graph: inout GraphBuilder) -> Bool {
        let name = layer.name.value
        let shape = graph.shape
        guard shape.count == 1 || shape.count == 3 else {
            graph.ok = false
            graph.diagnostics.append(
                .error(
                    "E0306",
                    "batch_norm layer '\(name)' needs [features] (after a linear) or [channels, height, width] (after a conv2d) per sample, but \(graph.shapeProducer) gives \(shapeText(shape))",
                    at: layer.location, notes: [DiagnosticNote("\(graph.shapeProducer) has shape \(shapeText(shape)) here", at: graph.shapeLocation)]))
            return true
        }
        let channels = shape[0], spatial = shape.dropFirst().reduce(1, *)
        // PyTorch refuses to train on one value per channel: the batch variance would be 0/0.
        if spatial == 1 && graph.spec.training.batchSize.value == 1 {
            graph.ok = false
            graph.diagnostics.append(
                .error(
                    "E0309", "batch_norm layer '\(name)' would normalize one value per channel at batch_size 1 in training",
                    at: layer.location, notes: [DiagnosticNote("the batch size is set here", at: graph.spec.training.batchSize.location)],
                    suggestion: "use a batch_size of at least 2, or remove '\(name)'"))
        }
        let geometry = BatchNormGeometry(
            channels: channels, spatial: spatial, eps: Float(spec.eps.value), momentum: Float(spec.momentum?.value ?? 0),
            cumulativeAverage: spec.momentum == nil)
        graph.layers.append(BatchNormLayer(name: name, location: layer.location, outputShape: shape, geometry: geometry, affine: spec.affine.value))
        let kind = shape.count == 1 ? "batch_norm1d" : "batch_norm2d"
        graph.summaries.append(
            LayerSummary(name: name, kind: kind, outputShape: shape, parameters: spec.affine.value ? 2 * channels : 0, location: layer.location))
        return true
    }

    func parameters(offset: inout Int) -> [ParameterTensor] {
        guard affine else { return [] }
        let c = geometry.channels
        var tensors: [ParameterTensor] = []
        for (suffix, role, value) in [("weight", ParameterTensor.Role.weight, Float(1)), ("bias", .bias, 0)] {
            var tensor = ParameterTensor(
                name: "\(name).\(suffix)", layer: name, role: role, shape: [c], offset: offset, count: c, storedCount: c, fanIn: c,
                fanOut: c, initialization: .pytorchDefault, location: location)
            tensor.constant = value
            tensors.append(tensor)
            offset += roundUp(c, to: parameterAlignmentFloats)
        }
        return tensors
    }

    func stateTensors(offset: inout Int) -> [StateTensor] {
        let c = geometry.channels
        var tensors: [StateTensor] = []
        for (suffix, role, count) in [("running_mean", StateTensor.Role.runningMean, c), ("running_var", .runningVar, c), ("num_batches_tracked", .batchesTracked, 1)] {
            tensors.append(
                StateTensor(
                    name: "\(name).\(suffix)", layer: name, role: role, shape: role == .batchesTracked ? [] : [c], offset: offset,
                    count: count, location: location))
            offset += roundUp(count, to: parameterAlignmentFloats)
        }
        return tensors
    }

    private var threadsUnits: Int { geometry.channels }

    func forward(_ builder: inout PlanBuilder, _ x: Slice, context: inout ForwardContext) -> Slice {
        let batch = builder.batch
        let y = builder.declare("\(name).out", .activation, .float32, shape: x.shape)
        let mean = builder.declare("\(name).batch_mean", .statistics, .float32, shape: [geometry.channels])
        let invStd = builder.declare("\(name).batch_invstd", .statistics, .float32, shape: [geometry.channels])
        context.saved[context.index] = ["mean": mean, "invstd": invStd]
        builder.train.append(.batchNormForward(kernel(builder, x, y, mean: mean, invStd: invStd, batch: batch)))
        return y
    }

    func backward(_ builder: inout PlanBuilder, context: inout BackwardContext) {
        context.throughActivation = false
        let saved = context.forward.saved[context.index]!
        let x = context.input
        // Without an input gradient (the first trainable layer), dx goes to a scratch buffer.
        let inputGradient = builder.declare("d_\(x.buffer)", .activationGradient, .float32, shape: x.shape)
        builder.train.append(
            .batchNormBackward(
                BatchNormBackward(
                    layer: name, outputGradient: context.gradient, input: x, weight: builder.tensorSlice("\(name).weight"),
                    savedMean: saved["mean"]!, savedInvStd: saved["invstd"]!, inputGradient: inputGradient,
                    weightGradient: builder.tensorSlice("\(name).weight", in: builder.gradientBlock),
                    biasGradient: builder.tensorSlice("\(name).bias", in: builder.gradientBlock), geometry: geometry,
                    threads: builder.threads(flops: x.elements * 8, units: threadsUnits), location: location)))
        context.gradient = inputGradient
    }

    func evaluate(_ builder: inout PlanBuilder, _ x: Slice) -> Slice {
        let y = builder.declare("eval.\(name).out", .activation, .float32, shape: x.shape)
        builder.eval.append(.batchNormForward(kernel(builder, x, y, mean: nil, invStd: nil, batch: builder.evalBatch)))
        return y
    }

    private func kernel(_ builder: PlanBuilder, _ x: Slice, _ y: Slice, mean: Slice?, invStd: Slice?, batch: Int) -> BatchNormForward {
        BatchNormForward(
            layer: name, input: x, output: y, weight: builder.tensorSlice("\(name).weight"), bias: builder.tensorSlice("\(name).bias"),
            runningMean: builder.stateSlice("\(name).running_mean"), runningVar: builder.stateSlice("\(name).running_var"),
            batchesTracked: builder.stateSlice("\(name).num_batches_tracked"), savedMean: mean, savedInvStd: invStd,
            geometry: geometry, threads: builder.threads(flops: x.elements * 7, units: threadsUnits), location: location)
    }
}
