import SpecParser

/// `flatten`: a view of its input as one row of features per sample; no kernel.
struct FlattenLayer: PlannedLayer {
    var name: String
    var location: SourceLocation
    var outputShape: [Int]

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
