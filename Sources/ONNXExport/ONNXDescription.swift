import Files
import Planner
import SpecParser

// What an exported model says about itself: its doc string for people, and metadata_props for
// programs (the input's name, shape and meaning, the outputs, and the resolved spec with its SHA-256).

/// The graph's input: its name, the normalization the graph applies, and what its values mean.
struct ONNXInput {
    var name: String
    var normalization: PixelNormalization
    var meaning: String

    /// From the evaluation's gather, which reads the samples and normalizes them.
    init(plan: Plan) throws {
        let gathers = plan.evalKernels.compactMap { kernel -> GatherBatch? in
            if case .gatherBatch(let gather) = kernel { return gather }
            return nil
        }
        guard let gather = gathers.first else { throw ONNXExportError(reason: "the plan's evaluation has no input gather") }
        normalization = gather.normalization
        let mean = normalization.mean, std = normalization.standardDeviation
        let applied =
            "the graph normalizes them itself, as training did: x * \(normalization.scale) + \(normalization.shift), "
            + "that is (x / 255 - \(mean)) / \(std) (data.normalize mean \(mean), std \(std))"
        switch gather.element {
        case .uint8:
            name = "pixels"
            meaning =
                "raw pixel values as float32, 0 (black) to 255 (white), one image per row: the numbers mlpc predict gives the model "
                + "(MNIST's convention: a light digit on a dark background); " + applied
        case .float32:
            name = "features"
            meaning = "the sample's values as float32, as the dataset stores them, one sample per row; " + applied
        }
    }
}

/// What the two outputs hold: logits and their softmax for a cross-entropy model; for another loss
/// (mse) the model's own outputs, whose softmax `mlpc predict` computes too but which are scores.
func outputMeaning(plan: Plan) -> (logits: String, probabilities: String) {
    if plan.isRegression {
        return (
            "the predicted targets, float32 [batch, \(plan.classes)], standardized with the training rows' mean and deviation (table_preprocessing in the mlpc model's metadata has them)",
            "the softmax of the outputs, float32 [batch, \(plan.classes)] (a regressor's outputs are not class scores; kept so every model has the same two outputs)"
        )
    }
    switch plan.loss {
    case .crossEntropy:
        return (
            "the class logits, float32 [batch, \(plan.classes)]: the final layer's outputs, before softmax",
            "the class probabilities, float32 [batch, \(plan.classes)]: the softmax of the logits over the classes"
        )
    case .mse, .l1, .huber:  // l1 and huber train only regressors, answered above
        return (
            "the model's outputs, float32 [batch, \(plan.classes)] (trained with mse against one-hot targets; the largest is the class)",
            "the softmax of the outputs over the classes, float32 [batch, \(plan.classes)] (as mlpc predict computes it; not trained as probabilities)"
        )
    }
}

func batchShapeText(_ shape: [Int]) -> String {
    "[" + ([onnxBatchDimension] + shape.map(String.init)).joined(separator: ", ") + "]"
}

/// The model's doc string: what it is, what goes in and what comes out.
func modelDocString(spec: Spec, plan: Plan, input: ONNXInput) -> String {
    let outputs = outputMeaning(plan: plan)
    return """
        mlpc model '\(spec.name.value)' (\(plan.layers.map(\.name).joined(separator: " -> ")); \(plan.parameterCount) parameters; trained with \(plan.loss.rawValue)).
        Input '\(input.name)': float32 \(batchShapeText(plan.inputShape)), \(input.meaning).
        Output '\(ONNXOutputName.logits)': \(outputs.logits).
        Output '\(ONNXOutputName.probabilities)': \(outputs.probabilities).
        The resolved spec and its SHA-256 are in the metadata (keys spec, spec_sha256).
        """
}

/// metadata_props, in a fixed order.
func modelMetadata(spec: Spec, plan: Plan, input: ONNXInput, mlpcVersion: String) -> [(String, String)] {
    let outputs = outputMeaning(plan: plan)
    let yaml = spec.resolvedYAML
    return [
        ("mlpc_version", mlpcVersion),
        ("input_name", input.name),
        ("input_shape", batchShapeText(plan.inputShape)),
        ("input_meaning", input.meaning),
        ("normalize_mean", "\(input.normalization.mean)"),
        ("normalize_std", "\(input.normalization.standardDeviation)"),
        ("output_\(ONNXOutputName.logits)", outputs.logits),
        ("output_\(ONNXOutputName.probabilities)", outputs.probabilities),
        ("loss", plan.loss.rawValue),
        ("classes", "\(plan.classes)"),
        ("spec", yaml),
        ("spec_sha256", SHA256.hash(Array(yaml.utf8)).hex),
    ]
}
