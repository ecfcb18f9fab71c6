import SpecParser

/// An activation layer that no linear before it absorbed (`buildModelGraph` fuses the others).
struct ActivationLayer: PlannedLayer {
    var name: String
    var location: SourceLocation
    var outputShape: [Int]
    var activation: ActivationFunction

    var producedActivation: ActivationFunction { activation }

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
