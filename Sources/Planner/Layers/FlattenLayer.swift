import SpecParser

/// `flatten`: a view of its input as one row of features per sample; no kernel.
struct FlattenLayer: PlannedLayer {
    var name: String
    var location: SourceLocation
    var outputShape: [Int]

    static func infer(_ layer: LayerSpec, into graph: inout GraphBuilder) -> Bool {
        let name = layer.name.value
        graph.shape = [graph.shape.reduce(1, *)]
        graph.layers.append(FlattenLayer(name: name, location: layer.location, outputShape: graph.shape))
        graph.summaries.append(LayerSummary(name: name, kind: "flatten", outputShape: graph.shape, parameters: 0, location: layer.location))
        return true
    }

    func forward(_ builder: inout PlanBuilder, _ x: Slice, context: inout ForwardContext) -> Slice {
        builder.view(x, shape: [builder.batch] + outputShape)
    }

    func backward(_ builder: inout PlanBuilder, context: inout BackwardContext) {
        context.gradient = builder.view(context.gradient, shape: context.input.shape)
    }

    func evaluate(_ builder: inout PlanBuilder, _ x: Slice) -> Slice {
        builder.view(x, shape: [builder.evalBatch] + outputShape)
    }
}
