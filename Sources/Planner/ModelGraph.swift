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

/// Infers every layer's per-sample output shape, checks it, and fuses activations into linears.
/// Returns nil together with errors when shapes do not flow.
func buildModelGraph(_ spec: Spec, diagnostics: inout [Diagnostic]) -> ModelGraph? {
    var shape = spec.model.inputShape.value
    var shapeLocation = spec.model.inputShape.location
    var shapeProducer = "the input (model.input_shape)"
    var operations: [any PlannedLayer] = []
    var summaries: [LayerSummary] = []
    var fusions: [String] = []
    var ok = true

    // Sizes are checked for overflow before any product is formed: a spec may say `out: 10000000000`.
    guard let inputElements = checkedProduct(shape), inputElements <= maxTensorElements else {
        diagnostics.append(
            .error(
                "E0305", "the input shape \(shapeText(shape)) has more than \(maxTensorElements) elements per sample",
                at: spec.model.inputShape.location))
        return nil
    }
    _ = inputElements
    for layer in spec.model.layers {
        let name = layer.name.value
        switch layer.kind {
        case .flatten:
            shape = [shape.reduce(1, *)]
            operations.append(FlattenLayer(name: name, location: layer.location, outputShape: shape))
            summaries.append(LayerSummary(name: name, kind: "flatten", outputShape: shape, parameters: 0, location: layer.location))
        case .linear(let linear):
            if shape.count != 1 {
                ok = false
                diagnostics.append(
                    .error(
                        "E0301",
                        "linear layer '\(name)' needs a 1-D input per sample, but \(shapeProducer) gives \(shapeText(shape))",
                        at: layer.location,
                        notes: [DiagnosticNote("\(shapeProducer) has shape \(shapeText(shape)) here", at: shapeLocation)],
                        suggestion: "add `- flatten` before '\(name)' to turn \(shapeText(shape)) into [\(shape.reduce(1, *))]"))
                // Keep checking the rest as if the input had been flattened.
                shape = [shape.reduce(1, *)]
            }
            let inFeatures = shape[0]
            let outFeatures = linear.outFeatures.value
            let batch = max(spec.training.batchSize.value, spec.training.evalBatchSize.value)
            // Name the tensor that is too large: the weight, or a batch of the layer's inputs or outputs
            // (at the larger of the training and evaluation batches).
            var tooLarge: String?
            if !(checkedProduct([inFeatures, outFeatures]).map { $0 <= maxTensorElements } ?? false) {
                tooLarge = "its \(inFeatures) x \(outFeatures) weight exceeds \(maxTensorElements) elements"
            } else if !(checkedProduct([batch, max(inFeatures, outFeatures)]).map { $0 <= maxTensorElements } ?? false) {
                let which = batch == spec.training.evalBatchSize.value && batch > spec.training.batchSize.value ? "eval_batch_size" : "batch_size"
                tooLarge = "a batch of its \(outFeatures >= inFeatures ? "outputs" : "inputs"), \(batch) x \(max(inFeatures, outFeatures)) at \(which) \(batch), exceeds \(maxTensorElements) elements"
            }
            if let tooLarge {
                diagnostics.append(.error("E0305", "linear layer '\(name)' is too large: \(tooLarge)", at: linear.outFeatures.location))
                return nil
            }
            let activation = ActivationFunction(linear.activation?.value)
            let parameters = inFeatures * outFeatures + (linear.bias.value ? outFeatures : 0)
            shape = [outFeatures]
            operations.append(
                LinearLayer(
                    name: name, location: layer.location, inFeatures: inFeatures, outFeatures: outFeatures, hasBias: linear.bias.value,
                    activation: activation, initialization: linear.initialization.value,
                    activationLocation: linear.activation?.location))
            let kind = linear.activation.map { "linear+\($0.value.specName)" } ?? "linear"
            summaries.append(LayerSummary(name: name, kind: kind, outputShape: shape, parameters: parameters, location: layer.location))
        case .activation(let activation):
            let function = ActivationFunction(activation.value)
            summaries.append(
                LayerSummary(name: name, kind: activation.value.specName, outputShape: shape, parameters: 0, location: layer.location))
            // Fuse into the linear just before, when that linear has no activation of its own.
            if var last = operations.last as? LinearLayer, last.activation.isIdentity {
                last.activation = function
                last.activationLocation = layer.location
                operations[operations.count - 1] = last
                fusions.append("\(name) fused into \(last.name): bias and \(activation.value.specName) applied in the matmul epilogue")
            } else {
                operations.append(ActivationLayer(name: name, location: layer.location, outputShape: shape, activation: function))
            }
        case .dropout(let p):
            operations.append(DropoutLayer(name: name, location: layer.location, outputShape: shape, p: p.value))
            summaries.append(LayerSummary(name: name, kind: "dropout(p=\(p.value))", outputShape: shape, parameters: 0, location: layer.location))
        }
        shapeProducer = "layer '\(name)'"
        shapeLocation = layer.location
    }

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
    } else if finalShape[0] < 2 {
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
                "E0304", "the model has no linear layer, so it has nothing to train", at: spec.model.location,
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

