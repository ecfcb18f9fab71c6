import SpecParser

/// The layers of a spec after shape inference and fusion: a straight line of layers over values.
/// Value 0 is the input batch; layer i reads value i and produces value i + 1. Flatten is a view,
/// and an activation layer that directly follows a linear without its own activation is fused into it.
struct ModelGraph {
    var inputShape: [Int]
    var layers: [any PlannedLayer]
    var summaries: [LayerSummary]
    var fusions: [String]

    var outputShape: [Int] { layers.last?.outputShape ?? inputShape }
}

/// Shape inference in progress: the shape flowing out of the layers so far, who produced it, and what
/// the layers planned so far are. Each layer kind's `infer` (Layers/*.swift) reads and extends it.
struct GraphBuilder {
    let spec: Spec
    var shape: [Int]
    var shapeLocation: SourceLocation
    var shapeProducer = "the input (model.input_shape)"
    var layers: [any PlannedLayer] = []
    var summaries: [LayerSummary] = []
    var fusions: [String] = []
    var diagnostics: [Diagnostic] = []
    /// False once a layer reported an error (checking goes on, so every problem is reported).
    var ok = true

    /// The larger of the training and evaluation batches, for size checks.
    var largestBatch: Int { max(spec.training.batchSize.value, spec.training.evalBatchSize.value) }
}

/// Infers every layer's per-sample output shape, checks it, and fuses activations into linears.
/// Returns nil together with errors when shapes do not flow.
func buildModelGraph(_ spec: Spec, diagnostics: inout [Diagnostic]) -> ModelGraph? {
    // Sizes are checked for overflow before any product is formed: a spec may say `out: 10000000000`.
    guard let inputElements = checkedProduct(spec.model.inputShape.value), inputElements <= maxTensorElements else {
        diagnostics.append(
            .error(
                "E0305", "the input shape \(shapeText(spec.model.inputShape.value)) has more than \(maxTensorElements) elements per sample",
                at: spec.model.inputShape.location))
        return nil
    }
    var graph = GraphBuilder(spec: spec, shape: spec.model.inputShape.value, shapeLocation: spec.model.inputShape.location)
    for layer in spec.model.layers {
        // The list of layer kinds: each infers its own shape and parameters (false: stop checking).
        let goesOn: Bool
        switch layer.kind {
        case .flatten: goesOn = FlattenLayer.infer(layer, into: &graph)
        case .linear(let linear): goesOn = LinearLayer.infer(layer, linear, into: &graph)
        case .activation(let activation): goesOn = ActivationLayer.infer(layer, activation, into: &graph)
        case .dropout(let p): goesOn = DropoutLayer.infer(layer, p: p, into: &graph)
        case .conv2d(let conv): goesOn = Conv2dLayer.infer(layer, conv, into: &graph)
        case .pool2d(let pool): goesOn = Pool2dLayer.infer(layer, pool, into: &graph)
        case .adaptiveAveragePool2d(let size): goesOn = Pool2dLayer.inferAdaptive(layer, outputSize: size, into: &graph)
        case .batchNorm(let norm): goesOn = BatchNormLayer.infer(layer, norm, into: &graph)
        }
        guard goesOn else {
            diagnostics += graph.diagnostics
            return nil
        }
        graph.shapeProducer = "layer '\(layer.name.value)'"
        graph.shapeLocation = layer.location
    }
    diagnostics += graph.diagnostics
    let shape = graph.shape, shapeProducer = graph.shapeProducer, shapeLocation = graph.shapeLocation
    let operations = graph.layers, summaries = graph.summaries, fusions = graph.fusions
    var ok = graph.ok

    // The loss/label contract: the final value is one row of class scores per sample.
    let finalShape = shape
    let lossName = spec.loss.kind.value.rawValue
    if finalShape.count != 1 {
        ok = false
        diagnostics.append(
            .error(
                "E0302",
                "\(lossName) needs the model's final output to be 1-D (one score per class), but \(shapeProducer) gives \(shapeText(finalShape))",
                at: spec.loss.kind.location,
                notes: [DiagnosticNote("the final output comes from \(shapeProducer)", at: shapeLocation)],
                suggestion: "end the model with a linear layer whose `out` is the number of classes"))
    } else if finalShape[0] < 2 && spec.data.table?.target.type.value != .number {
        ok = false
        diagnostics.append(
            .error(
                "E0303",
                "\(lossName) with class labels needs at least 2 classes, but the final output has \(finalShape[0])",
                at: spec.loss.kind.location,
                notes: [DiagnosticNote("the final output comes from \(shapeProducer)", at: shapeLocation)]))
    }
    if !operations.contains(where: { $0.isTrainable }) {
        ok = false
        diagnostics.append(
            .error(
                "E0304", "the model has no linear or conv2d layer, so it has nothing to train", at: spec.model.location,
                suggestion: "add `- linear: {out: N}` layers"))
    }
    if let last = operations.last as? DropoutLayer {
        diagnostics.append(
            .warning("W0302", "dropout '\(last.name)' is the last layer: it drops class scores right before the loss", at: last.location))
    }
    guard ok else { return nil }
    return ModelGraph(inputShape: spec.model.inputShape.value, layers: operations, summaries: summaries, fusions: fusions)
}

/// No tensor may have more elements than this (16 GiB of float32): larger specs are refused, not overflowed.
let maxTensorElements = 1 << 32

func checkedProduct(_ values: [Int]) -> Int? {
    var product = 1
    for value in values {
        let (result, overflow) = product.multipliedReportingOverflow(by: value)
        if overflow || value < 0 { return nil }
        product = result
    }
    return product
}

