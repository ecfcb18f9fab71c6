import SpecParser

/// `dropout: p`: inverted dropout in training, the identity in evaluation.
struct DropoutLayer: PlannedLayer {
    var name: String
    var location: SourceLocation
    var outputShape: [Int]
    var p: Double

    static func infer(_ layer: LayerSpec, p: Located<Double>, into graph: inout GraphBuilder) -> Bool {
        let name = layer.name.value
        graph.layers.append(DropoutLayer(name: name, location: layer.location, outputShape: graph.shape, p: p.value))
        graph.summaries.append(
            LayerSummary(name: name, kind: "dropout(p=\(p.value))", outputShape: graph.shape, parameters: 0, location: layer.location))
        return true
    }

    func forward(_ builder: inout PlanBuilder, _ x: Slice, context: inout ForwardContext) -> Slice {
        let y = builder.declare("\(name).out", .activation, .float32, shape: x.shape)
        let mask = builder.declare("\(name).mask", .mask, .float32, shape: x.shape)
        context.masks[context.index] = mask
        builder.train.append(.dropoutForward(DropoutForward(layer: name, input: x, output: y, mask: mask, p: p, location: location)))
        return y
    }

    func backward(_ builder: inout PlanBuilder, context: inout BackwardContext) {
        guard context.needsInputGradient, let mask = context.forward.masks[context.index] else { return }
        builder.train.append(
            .dropoutBackward(
                DropoutBackward(
                    layer: name, outputGradient: context.gradient, mask: mask, inputGradient: context.gradient, location: location)))
        context.throughActivation = false
    }

    func evaluate(_ builder: inout PlanBuilder, _ x: Slice) -> Slice {
        builder.view(x, shape: [builder.evalBatch] + outputShape)
    }
}
