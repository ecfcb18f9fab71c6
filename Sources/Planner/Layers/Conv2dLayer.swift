import KernelInterface
import SpecParser

/// `conv2d: {out, kernel, stride, padding, dilation, groups, bias, activation, init}`: PyTorch's
/// nn.Conv2d over [C, H, W] per sample, weight [out, in/groups, kh, kw] in PyTorch's row-major layout,
/// the bias and activation applied in the product's epilogue.
struct Conv2dLayer: PlannedLayer {
    var name: String
    var location: SourceLocation
    var geometry: ConvGeometry
    var hasBias: Bool
    var activation: ActivationFunction
    var initialization: Initialization
    var activationLocation: SourceLocation?

    var outputShape: [Int] { [geometry.outChannels, geometry.outHeight, geometry.outWidth] }
    var producedActivation: ActivationFunction { .identity }
    var isTrainable: Bool { true }

    static func infer(_ layer: LayerSpec, _ conv: Conv2dSpec, into graph: inout GraphBuilder) -> Bool {
        let name = layer.name.value
        guard let (channels, height, width) = graph.spatialInput(layer, kind: "conv2d") else { return false }
        let out = conv.outChannels.value, groups = conv.groups.value
        var fits = true
        if channels % groups != 0 || out % groups != 0 {
            graph.ok = false
            fits = false
            let which = channels % groups != 0 ? "its \(channels) input channels" : "its \(out) output channels"
            graph.diagnostics.append(
                .error(
                    "E0308", "conv2d layer '\(name)': \(which) do not divide into \(groups) groups", at: conv.groups.location,
                    notes: [DiagnosticNote("\(graph.shapeProducer) gives \(shapeText(graph.shape))", at: graph.shapeLocation)],
                    suggestion: "choose groups that divide both \(channels) and \(out)"))
        }
        let k = conv.kernel.value, s = conv.stride.value, d = conv.dilation.value
        // PyTorch's `same`: total padding dilation * (kernel - 1), the smaller half before.
        let padTop: Int, padBottom: Int, padLeft: Int, padRight: Int
        switch conv.padding.value {
        case .explicit(let p):
            (padTop, padBottom, padLeft, padRight) = (p.height, p.height, p.width, p.width)
        case .same:
            let th = d.height * (k.height - 1), tw = d.width * (k.width - 1)
            (padTop, padBottom, padLeft, padRight) = (th / 2, th - th / 2, tw / 2, tw - tw / 2)
        }
        let outHeight = GraphBuilder.outputSize(
            input: height, padBefore: padTop, padAfter: padBottom, kernel: k.height, stride: s.height, dilation: d.height, ceilMode: false)
        let outWidth = GraphBuilder.outputSize(
            input: width, padBefore: padLeft, padAfter: padRight, kernel: k.width, stride: s.width, dilation: d.width, ceilMode: false)
        if outHeight == nil {
            graph.reportWindowTooLarge(
                layer, kind: "conv2d", dimension: "height", input: height, padded: height + padTop + padBottom,
                window: d.height * (k.height - 1) + 1, at: conv.kernel.location)
        }
        if outWidth == nil {
            graph.reportWindowTooLarge(
                layer, kind: "conv2d", dimension: "width", input: width, padded: width + padLeft + padRight,
                window: d.width * (k.width - 1) + 1, at: conv.kernel.location)
        }
        guard let outHeight, let outWidth, fits else { return false }
        graph.warnSkippingStride(layer, kind: "conv2d", stride: s.height, window: d.height * (k.height - 1) + 1, dimension: "height", at: conv.stride.location)
        graph.warnSkippingStride(layer, kind: "conv2d", stride: s.width, window: d.width * (k.width - 1) + 1, dimension: "width", at: conv.stride.location)
        // Checked before any product of the geometry is formed: a hostile spec may ask for a huge patch.
        let batch = graph.largestBatch
        let patch = checkedProduct([channels / groups, k.height, k.width]) ?? Int.max
        let sizes = [
            checkedProduct([out, patch]), checkedProduct([batch, out, outHeight, outWidth]),
            checkedProduct([patch, outHeight, outWidth, max(out, 16) + 1]),
        ]
        guard sizes.allSatisfy({ $0.map { $0 <= maxTensorElements } ?? false }) else {
            graph.diagnostics.append(
                .error(
                    "E0305",
                    "conv2d layer '\(name)' is too large: its weight, a batch of its outputs or its unfolded input exceeds \(maxTensorElements) elements",
                    at: conv.outChannels.location))
            return false
        }
        let geometry = ConvGeometry(
            inChannels: channels, inHeight: height, inWidth: width, outChannels: out, outHeight: outHeight, outWidth: outWidth,
            kernelHeight: k.height, kernelWidth: k.width, strideHeight: s.height, strideWidth: s.width, padTop: padTop,
            padLeft: padLeft, dilationHeight: d.height, dilationWidth: d.width, groups: groups)
        graph.shape = [out, outHeight, outWidth]
        graph.layers.append(
            Conv2dLayer(
                name: name, location: layer.location, geometry: geometry, hasBias: conv.bias.value,
                activation: ActivationFunction(conv.activation?.value), initialization: conv.initialization.value,
                activationLocation: conv.activation?.location))
        let parameters = geometry.weightFloats + (conv.bias.value ? out : 0)
        var kind = "conv2d \(k.text)"
        if s != .square(1) { kind += " /\(s.text)" }
        if let activation = conv.activation { kind += "+\(activation.value.specName)" }
        graph.summaries.append(LayerSummary(name: name, kind: kind, outputShape: graph.shape, parameters: parameters, location: layer.location))
        return true
    }

    func parameters(offset: inout Int) -> [ParameterTensor] {
        let g = geometry
        let fanIn = g.patchSize, fanOut = g.groupOutChannels * g.kernelHeight * g.kernelWidth
        var tensors = [
            ParameterTensor(
                name: "\(name).weight", layer: name, role: .weight,
                shape: [g.outChannels, g.groupInChannels, g.kernelHeight, g.kernelWidth], offset: offset, count: g.weightFloats,
                storedCount: g.weightFloats, fanIn: fanIn, fanOut: fanOut, initialization: initialization, location: location)
        ]
        offset += roundUp(g.weightFloats, to: parameterAlignmentFloats)
        if hasBias {
            tensors.append(
                ParameterTensor(
                    name: "\(name).bias", layer: name, role: .bias, shape: [g.outChannels], offset: offset, count: g.outChannels,
                    storedCount: g.outChannels, fanIn: fanIn, fanOut: fanOut, initialization: initialization, location: location))
            offset += roundUp(g.outChannels, to: parameterAlignmentFloats)
        }
        return tensors
    }

    func forward(_ builder: inout PlanBuilder, _ x: Slice, context: inout ForwardContext) -> Slice {
        let batch = builder.batch
        let y = builder.declare("\(name).out", .activation, .float32, shape: [batch] + outputShape)
        var pre: Slice?
        if activation.needsPreactivation {
            pre = builder.declare("\(name).preact", .preactivation, .float32, shape: [batch] + outputShape)
            context.preactivations[context.index] = pre
        }
        // Each part copies or unfolds one sample at a time into its workspace; the weight gradient
        // unfolds again rather than keep every sample's columns (megabytes that would come back from memory).
        let method = ConvolutionMethod.choose(geometry)
        builder.noteWorkspace(floats: forwardWorkspaceFloats(method))
        let flops = 2 * batch * geometry.outputFloats * geometry.patchSize
        builder.train.append(
            .conv2dForward(
                Conv2dForward(
                    layer: name, input: builder.view(x, shape: [batch, geometry.inChannels, geometry.inHeight, geometry.inWidth]),
                    weight: builder.tensorSlice("\(name).weight")!, bias: builder.tensorSlice("\(name).bias"), output: y,
                    preactivation: pre, geometry: geometry, activation: activation, method: method, batch: batch,
                    threads: builder.threads(flops: flops, units: batch), location: location)))
        return y
    }

    func backward(_ builder: inout PlanBuilder, context: inout BackwardContext) {
        let batch = builder.batch
        if !activation.isIdentity && !context.throughActivation {
            builder.train.append(
                .activationBackward(
                    ActivationBackward(
                        layer: name, outputGradient: context.gradient, preactivation: context.preactivation, output: context.output,
                        inputGradient: context.gradient, activation: activation, location: activationLocation ?? location)))
        }
        context.throughActivation = false
        let flops = 2 * batch * geometry.outputFloats * geometry.patchSize
        // Stride 1 reads each tap's inputs as one run of a shifted copy of the input: no unfolding, accumulators in
        // registers (LeNet-5's weight gradients 2.9-3.2x faster on one thread, docs/performance.md).
        // Either workspace is sized for one part doing all the work: an executor with fewer threads than
        // the plan runs fewer parts.
        let method: ConvWeightGradientMethod, weightThreads: Int
        if let layout = Stride1WeightGradientLayout(geometry) {
            method = .stride1
            weightThreads = builder.threads(flops: flops, units: layout.tasks)
            builder.noteWorkspace(floats: layout.scratchFloats)
        } else {
            method = .im2colRows
            weightThreads = builder.threads(flops: flops, units: geometry.patchSize)
            builder.noteWorkspace(floats: geometry.weightGradientScratchFloats(rows: geometry.patchSize))
        }
        builder.train.append(
            .conv2dBackwardWeights(
                Conv2dBackwardWeights(
                    layer: name, input: builder.view(context.input, shape: [batch, geometry.inChannels, geometry.inHeight, geometry.inWidth]),
                    outputGradient: context.gradient,
                    weightGradient: builder.tensorSlice("\(name).weight", in: builder.gradientBlock)!,
                    biasGradient: builder.tensorSlice("\(name).bias", in: builder.gradientBlock), geometry: geometry, method: method, batch: batch,
                    threads: weightThreads, location: location)))
        guard context.needsInputGradient else { return }
        let x = context.input
        let inputGradient = builder.declare("d_\(x.buffer)", .activationGradient, .float32, shape: x.shape)
        let inputMethod = ConvInputGradientMethod.choose(geometry)
        switch inputMethod {
        case .im2col: builder.noteWorkspace(floats: geometry.patchSize * geometry.outPixels)
        case .sampleLanes: builder.noteWorkspace(floats: geometry.sampleLaneInputGradientFloats)
        }
        builder.train.append(
            .conv2dBackwardInput(
                Conv2dBackwardInput(
                    layer: name, outputGradient: context.gradient, weight: builder.tensorSlice("\(name).weight")!,
                    inputGradient: inputGradient, geometry: geometry, method: inputMethod, batch: batch,
                    threads: builder.threads(flops: flops, units: inputMethod == .sampleLanes ? (batch + 15) / 16 : batch),
                    location: location)))
        context.gradient = inputGradient
    }

    /// One sample's row-shifted copies (direct) or columns (im2col), per part.
    func forwardWorkspaceFloats(_ method: ConvolutionMethod) -> Int {
        method == .direct ? geometry.shiftedRowFloats : geometry.columnFloats
    }

    func evaluate(_ builder: inout PlanBuilder, _ x: Slice) -> Slice {
        let batch = builder.evalBatch
        let y = builder.declare("eval.\(name).out", .activation, .float32, shape: [batch] + outputShape)
        // Evaluation keeps no columns: each part copies or unfolds one sample at a time into its workspace.
        let method = ConvolutionMethod.choose(geometry)
        builder.noteWorkspace(floats: forwardWorkspaceFloats(method))
        let flops = 2 * batch * geometry.outputFloats * geometry.patchSize
        builder.eval.append(
            .conv2dForward(
                Conv2dForward(
                    layer: name, input: builder.view(x, shape: [batch, geometry.inChannels, geometry.inHeight, geometry.inWidth]),
                    weight: builder.tensorSlice("\(name).weight")!, bias: builder.tensorSlice("\(name).bias"), output: y,
                    preactivation: nil, geometry: geometry, activation: activation, method: method, batch: batch,
                    threads: builder.threads(flops: flops, units: batch), location: location)))
        return y
    }
}
