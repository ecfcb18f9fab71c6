import SpecParser

/// An activation layer that no linear before it absorbed (`buildModelGraph` fuses the others).
struct ActivationLayer: PlannedLayer {
    var name: String
    var location: SourceLocation
    var outputShape: [Int]
    var activation: ActivationFunction

    var producedActivation: ActivationFunction { activation }

    /// Fuses into the linear just before, when that linear has no activation of its own.
    static func infer(_ layer: LayerSpec, _ activation: Located<Activation>, into graph: inout GraphBuilder) -> Bool {
        let name = layer.name.value
        let function = ActivationFunction(activation.value)
        graph.summaries.append(
            LayerSummary(name: name, kind: activation.value.specName, outputShape: graph.shape, parameters: 0, location: layer.location))
        if var last = graph.layers.last as? LinearLayer, last.activation.isIdentity {
            last.activation = function
            last.activationLocation = layer.location
            graph.layers[graph.layers.count - 1] = last
            graph.fusions.append("\(name) fused into \(last.name): bias and \(activation.value.specName) applied in the matmul epilogue")
        } else if var last = graph.layers.last as? Conv2dLayer, last.activation.isIdentity {
            last.activation = function
            last.activationLocation = layer.location
            graph.layers[graph.layers.count - 1] = last
            graph.fusions.append("\(name) fused into \(last.name): bias and \(activation.value.specName) applied in the convolution's epilogue")
        } else {
            graph.layers.append(ActivationLayer(name: name, location: layer.location, outputShape: graph.shape, activation: function))
        }
        return true
    }

    func forward(_ builder: inout PlanBuilder, _ x: Slice, context: inout ForwardContext) -> Slice {
        let y = builder.declare("\(name).out", .activation, .float32, shape: x.shape)
        builder.train.append(.activationForward(ActivationForward(layer: name, input: x, output: y, activation: activation, location: location)))
        if activation.needsPreactivation { context.preactivations[context.index] = x }
        return y
    }

    func backward(_ builder: inout PlanBuilder, context: inout BackwardContext) {
        guard context.needsInputGradient else { return }
        if !context.throughActivation {
            builder.train.append(
                .activationBackward(
                    ActivationBackward(
                        layer: name, outputGradient: context.gradient, preactivation: context.preactivation, output: context.output,
                        inputGradient: context.gradient, activation: activation, location: location)))
        }
        context.throughActivation = false
    }

    func evaluate(_ builder: inout PlanBuilder, _ x: Slice) -> Slice {
        let y = builder.declare("eval.\(name).out", .activation, .float32, shape: x.shape)
        builder.eval.append(.activationForward(ActivationForward(layer: name, input: x, output: y, activation: activation, location: location)))
        return y
    }
}
