import KernelInterface
import SpecParser

/// `linear: {out, bias, activation, init}`: y = act(x wᵀ + b), PyTorch's nn.Linear (weight [out, in],
/// stored in panels of 32 output features) with the activation fused into the product's epilogue.
struct LinearLayer: PlannedLayer {
    var name: String
    var location: SourceLocation
    var outputShape: [Int] { [outFeatures] }
    var inFeatures: Int
    var outFeatures: Int
    var hasBias: Bool
    var activation: ActivationFunction
    var initialization: Initialization
    /// Where the activation came from (the `activation` key, or a fused activation layer), for diagnostics.
    var activationLocation: SourceLocation?

    var producedActivation: ActivationFunction { activation }
    var isTrainable: Bool { true }

    /// Takes a 1-D input per sample (E0301 otherwise, with the flatten to add) and refuses a weight or
    /// batch too large to address (E0305, which stops checking).
    static func infer(_ layer: LayerSpec, _ linear: LinearSpec, into graph: inout GraphBuilder) -> Bool {
        let name = layer.name.value
        if graph.shape.count != 1 {
            graph.ok = false
            let shape = graph.shape, producer = graph.shapeProducer
            graph.diagnostics.append(
                .error(
                    "E0301",
                    "linear layer '\(name)' needs a 1-D input per sample, but \(producer) gives \(shapeText(shape))",
                    at: layer.location,
                    notes: [DiagnosticNote("\(producer) has shape \(shapeText(shape)) here", at: graph.shapeLocation)],
                    suggestion: "add `- flatten` before '\(name)' to turn \(shapeText(shape)) into [\(shape.reduce(1, *))]"))
            // Keep checking the rest as if the input had been flattened.
            graph.shape = [shape.reduce(1, *)]
        }
        let inFeatures = graph.shape[0]
        let outFeatures = linear.outFeatures.value
        let batch = graph.largestBatch
        let training = graph.spec.training
        // Name the tensor that is too large: the weight, or a batch of the layer's inputs or outputs
        // (at the larger of the training and evaluation batches).
        var tooLarge: String?
        if !(checkedProduct([inFeatures, outFeatures]).map { $0 <= maxTensorElements } ?? false) {
            tooLarge = "its \(inFeatures) x \(outFeatures) weight exceeds \(maxTensorElements) elements"
        } else if !(checkedProduct([batch, max(inFeatures, outFeatures)]).map { $0 <= maxTensorElements } ?? false) {
            let which = batch == training.evalBatchSize.value && batch > training.batchSize.value ? "eval_batch_size" : "batch_size"
            tooLarge = "a batch of its \(outFeatures >= inFeatures ? "outputs" : "inputs"), \(batch) x \(max(inFeatures, outFeatures)) at \(which) \(batch), exceeds \(maxTensorElements) elements"
        }
        if let tooLarge {
            graph.diagnostics.append(.error("E0305", "linear layer '\(name)' is too large: \(tooLarge)", at: linear.outFeatures.location))
            return false
        }
        let parameters = inFeatures * outFeatures + (linear.bias.value ? outFeatures : 0)
        graph.shape = [outFeatures]
        graph.layers.append(
            LinearLayer(
                name: name, location: layer.location, inFeatures: inFeatures, outFeatures: outFeatures, hasBias: linear.bias.value,
                activation: ActivationFunction(linear.activation?.value), initialization: linear.initialization.value,
                activationLocation: linear.activation?.location))
        let kind = linear.activation.map { "linear+\($0.value.specName)" } ?? "linear"
        graph.summaries.append(LayerSummary(name: name, kind: kind, outputShape: graph.shape, parameters: parameters, location: layer.location))
        return true
    }

    func parameters(offset: inout Int) -> [ParameterTensor] {
        let storedWeight = WeightPanels.storedFloats(outFeatures: outFeatures, inFeatures: inFeatures)
        var tensors = [
            ParameterTensor(
                name: "\(name).weight", layer: name, role: .weight, shape: [outFeatures, inFeatures], offset: offset,
                count: inFeatures * outFeatures, storedCount: storedWeight, fanIn: inFeatures, fanOut: outFeatures,
                initialization: initialization, location: location)
        ]
        offset += roundUp(storedWeight, to: parameterAlignmentFloats)
        if hasBias {
            tensors.append(
                ParameterTensor(
                    name: "\(name).bias", layer: name, role: .bias, shape: [outFeatures], offset: offset, count: outFeatures,
                    storedCount: outFeatures, fanIn: inFeatures, fanOut: outFeatures, initialization: initialization,
                    location: location))
            offset += roundUp(outFeatures, to: parameterAlignmentFloats)
        }
        return tensors
    }

    func forward(_ builder: inout PlanBuilder, _ x: Slice, context: inout ForwardContext) -> Slice {
        let batch = builder.batch
        let y = builder.declare("\(name).out", .activation, .float32, shape: [batch, outFeatures])
        var pre: Slice? = nil
        if activation.needsPreactivation {
            pre = builder.declare("\(name).preact", .preactivation, .float32, shape: [batch, outFeatures])
            context.preactivations[context.index] = pre
        }
        let shape = builder.matmul(m: batch, n: outFeatures, k: inFeatures)
        builder.noteWorkspace(shape)
        builder.train.append(
            .linearForward(
                LinearForward(
                    layer: name, input: builder.view(x, shape: [batch, inFeatures]), weight: builder.weightSlice(name),
                    bias: builder.biasSlice(name), output: y, preactivation: pre, activation: activation, matmul: shape,
                    location: location)))
        return y
    }

    func backward(_ builder: inout PlanBuilder, context: inout BackwardContext) {
        let batch = builder.batch
        let x = context.input
        if !activation.isIdentity && !context.throughActivation {
            builder.train.append(
                .activationBackward(
                    ActivationBackward(
                        layer: name, outputGradient: context.gradient, preactivation: context.preactivation, output: context.output,
                        inputGradient: context.gradient, activation: activation, location: activationLocation ?? location)))
        }
        let weightsShape = builder.matmul(m: inFeatures, n: outFeatures, k: batch)
        builder.noteWorkspace(weightsShape)
        builder.train.append(
            .linearBackwardWeights(
                LinearBackwardWeights(
                    layer: name, input: builder.view(x, shape: [batch, inFeatures]), outputGradient: context.gradient,
                    weightGradient: builder.weightSlice(name, in: builder.gradientBlock), biasGradient: builder.biasSlice(name, in: builder.gradientBlock),
                    matmul: weightsShape, location: location)))
        context.throughActivation = false
        guard context.needsInputGradient else { return }
        let inputGradient = builder.declare("d_\(x.buffer)", .activationGradient, .float32, shape: [batch, inFeatures])
        // Fuse the derivative of the activation that produced x into this product.
        var producerActivation = ActivationFunction.identity
        var producerPre: Slice? = nil
        if context.index > 0 {
            producerActivation = context.layers[context.index - 1].producedActivation
            producerPre = producerActivation.needsPreactivation ? context.forward.preactivations[context.index - 1] : nil
        }
        let inputShape = builder.matmul(m: batch, n: inFeatures, k: outFeatures)
        builder.noteWorkspace(inputShape)
        builder.train.append(
            .linearBackwardInput(
                LinearBackwardInput(
                    layer: name, outputGradient: context.gradient, weight: builder.weightSlice(name), inputGradient: inputGradient,
                    producerActivation: producerActivation, producerOutput: builder.view(x, shape: [batch, inFeatures]),
                    producerPreactivation: producerPre, matmul: inputShape, location: location)))
        context.gradient = builder.view(inputGradient, shape: x.shape)
        context.throughActivation = !producerActivation.isIdentity
    }

    func evaluate(_ builder: inout PlanBuilder, _ x: Slice) -> Slice {
        let batch = builder.evalBatch
        let y = builder.declare("eval.\(name).out", .activation, .float32, shape: [batch, outFeatures])
        let shape = builder.matmul(m: batch, n: outFeatures, k: inFeatures)
        builder.noteWorkspace(shape)
        builder.eval.append(
            .linearForward(
                LinearForward(
                    layer: name, input: builder.view(x, shape: [batch, inFeatures]), weight: builder.weightSlice(name),
                    bias: builder.biasSlice(name), output: y, preactivation: nil, activation: activation, matmul: shape,
                    location: location)))
        return y
    }
}
