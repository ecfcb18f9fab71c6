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
    /// A table model's columns, whose standardization the graph applies.
    var table: ONNXTable?

    /// From the evaluation's gather, which reads the samples and normalizes them, or for a table
    /// model from its preprocessing.
    init(plan: Plan, table: ONNXTable?) throws {
        self.table = table
        let gathers = plan.evalKernels.compactMap { kernel -> GatherBatch? in
            if case .gatherBatch(let gather) = kernel { return gather }
            return nil
        }
        guard let gather = gathers.first else { throw ONNXExportError(reason: "the plan's evaluation has no input gather") }
        normalization = gather.normalization
        if let table {
            guard plan.inputShape == [table.width] else {
                throw ONNXExportError(
                    reason: "the table preprocessing encodes \(table.width) input values per row, but the model's input shape is \(shapeText(plan.inputShape))")
            }
            name = "features"
            meaning =
                "one table row per row of the input, encoded as \(table.width) float32 values in this order (the preprocessing mlpc run recorded from the training split; "
                + "metadata input_columns has it as JSON): " + table.columnDescriptions.joined(separator: "; ")
            return
        }
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

/// The graph's outputs with what each holds: logits and their softmax for a classifier (for another
/// loss than cross_entropy, mse, the model's own outputs, whose softmax `mlpc predict` computes too
/// but which are scores); a table regressor's predictions in the target's units.
func outputDescriptions(plan: Plan, table: ONNXTable?) -> [(name: String, meaning: String)] {
    if let table, !table.isClassifier {
        let targets = zip(table.targetColumns, zip(table.targetMeans, table.targetStds)).enumerated().map { j, entry in
            "column \(j) '\(entry.0)' = output * \(entry.1.1) + \(entry.1.0)"
        }
        return [
            (
                ONNXOutputName.predictions,
                "the predicted targets in their own units, float32 [batch, \(plan.classes)] (trained with \(plan.loss.rawValue) on standardized targets; the graph undoes the standardization: "
                    + targets.joined(separator: ", ") + ")"
            )
        ]
    }
    var meaning = outputMeaning(plan: plan)
    if let table {
        let classes = table.classNames.enumerated().map { "\($0.offset) '\($0.element)'" }.joined(separator: ", ")
        meaning.logits += "; the classes of '\(table.targetColumns.joined(separator: ", "))': \(classes)"
        meaning.probabilities += "; the classes of '\(table.targetColumns.joined(separator: ", "))': \(classes)"
    }
    return [(ONNXOutputName.logits, meaning.logits), (ONNXOutputName.probabilities, meaning.probabilities)]
}

func outputMeaning(plan: Plan) -> (logits: String, probabilities: String) {
    switch plan.loss {
    case .crossEntropy:
        return (
            "the class logits, float32 [batch, \(plan.classes)]: the final layer's outputs, before softmax",
            "the class probabilities, float32 [batch, \(plan.classes)]: the softmax of the logits over the classes"
        )
    case .mse, .l1, .huber:  // l1 and huber train only regressors, which outputDescriptions answers
        return (
            "the model's outputs, float32 [batch, \(plan.classes)] (trained with \(plan.loss.rawValue) against one-hot targets; the largest is the class)",
            "the softmax of the outputs over the classes, float32 [batch, \(plan.classes)] (as mlpc predict computes it; not trained as probabilities)"
        )
    }
}

func batchShapeText(_ shape: [Int]) -> String {
    "[" + ([onnxBatchDimension] + shape.map(String.init)).joined(separator: ", ") + "]"
}

/// The model's doc string: what it is, what goes in and what comes out.
func modelDocString(spec: Spec, plan: Plan, input: ONNXInput) -> String {
    let outputs = outputDescriptions(plan: plan, table: input.table).map { "Output '\($0.name)': \($0.meaning)." }
    return """
        mlpc model '\(spec.name.value)' (\(plan.layers.map(\.name).joined(separator: " -> ")); \(plan.parameterCount) parameters; trained with \(plan.loss.rawValue)).
        Input '\(input.name)': float32 \(batchShapeText(plan.inputShape)), \(input.meaning).

        """ + outputs.joined(separator: "\n") + """

        The resolved spec and its SHA-256 are in the metadata (keys spec, spec_sha256).
        """
}

/// metadata_props, in a fixed order.
func modelMetadata(spec: Spec, plan: Plan, input: ONNXInput, mlpcVersion: String) -> [(String, String)] {
    let yaml = spec.resolvedYAML
    var entries = [
        ("mlpc_version", mlpcVersion),
        ("input_name", input.name),
        ("input_shape", batchShapeText(plan.inputShape)),
        ("input_meaning", input.meaning),
    ]
    if let table = input.table {
        entries += [
            ("input_columns", table.columnsJSON),
            ("target_columns", jsonText(table.targetColumns)),
        ]
        if table.isClassifier { entries.append(("class_names", jsonText(table.classNames))) }
    } else {
        entries += [
            ("normalize_mean", "\(input.normalization.mean)"),
            ("normalize_std", "\(input.normalization.standardDeviation)"),
        ]
    }
    entries += outputDescriptions(plan: plan, table: input.table).map { ("output_\($0.name)", $0.meaning) }
    entries += [
        ("loss", plan.loss.rawValue),
        (input.table?.isClassifier == false ? "targets" : "classes", "\(plan.classes)"),
        ("spec", yaml),
        ("spec_sha256", SHA256.hash(Array(yaml.utf8)).hex),
    ]
    return entries
}
