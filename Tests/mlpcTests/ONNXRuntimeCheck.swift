import Foundation
import TestSupport
import XCTest

/// Checks an exported ONNX model with Python's onnx and onnxruntime (scripts/test installs both): the
/// checker with full_check, then the model run in ONNX Runtime on the test images that
/// `mlpc predict --format json` classified, compared output by output.
enum ONNXRuntimeCheck {
    struct Report: Decodable {
        var irVersion: Int
        var opsets: [String: Int]
        var inputs: [String]
        var inputDims: [String]
        var outputs: [String]
        var initializersAmongInputs: [String]
        var opTypes: [String]
        var rows: Int
        var maxLogitDifference: Double
        var maxProbabilityDifference: Double
        var classesEqual: Bool
        var singleRowMaxDifference: Double
        var metadata: [String: String]
        var docString: String

        enum CodingKeys: String, CodingKey {
            case irVersion = "ir_version", opsets, inputs, inputDims = "input_dims", outputs,
                initializersAmongInputs = "initializers_among_inputs", opTypes = "op_types", rows,
                maxLogitDifference = "max_logit_difference", maxProbabilityDifference = "max_probability_difference",
                classesEqual = "classes_equal", singleRowMaxDifference = "single_row_max_difference", metadata,
                docString = "doc_string"
        }
    }

    static let script = #"""
        import gzip, json, sys
        import numpy as np
        import onnx, onnx.checker
        import onnxruntime as ort

        model_path, predictions_path, images_path = sys.argv[1:4]
        model = onnx.load(model_path)
        onnx.checker.check_model(model, full_check=True)
        graph = model.graph
        initializers = {t.name for t in graph.initializer}
        dims = [d.dim_param or str(d.dim_value) for d in graph.input[0].type.tensor_type.shape.dim]

        with (gzip.open if images_path.endswith(".gz") else open)(images_path, "rb") as f:
            data = f.read()
        count = int.from_bytes(data[4:8], "big")
        shape = [int(d) for d in dims[1:]]
        images = np.frombuffer(data, dtype=np.uint8, offset=16).reshape([count] + shape)
        predictions = json.load(open(predictions_path))["predictions"]
        indices = [int(p["input"].rsplit(" ", 1)[1]) for p in predictions]
        pixels = images[indices].astype(np.float32)

        session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
        input_name = session.get_inputs()[0].name
        logits, probabilities = session.run(["logits", "probabilities"], {input_name: pixels})
        expected_logits = np.array([p["logits"] for p in predictions], dtype=np.float32)
        expected_probabilities = np.array([p["probabilities"] for p in predictions], dtype=np.float32)
        # The batch dimension is symbolic: one row alone gives that row's outputs.
        single = session.run(["logits"], {input_name: pixels[:1]})[0]
        print(json.dumps({
            "ir_version": model.ir_version,
            "opsets": {o.domain: o.version for o in model.opset_import},
            "inputs": [i.name for i in graph.input],
            "input_dims": dims,
            "outputs": [o.name for o in graph.output],
            "initializers_among_inputs": [i.name for i in graph.input if i.name in initializers],
            "op_types": [n.op_type for n in graph.node],
            "rows": len(predictions),
            "max_logit_difference": float(np.abs(logits - expected_logits).max()),
            "max_probability_difference": float(np.abs(probabilities - expected_probabilities).max()),
            "classes_equal": bool((logits.argmax(1) == np.array([p["predicted"] for p in predictions])).all()),
            "single_row_max_difference": float(np.abs(single - expected_logits[:1]).max()),
            "metadata": {p.key: p.value for p in model.metadata_props},
            "doc_string": model.doc_string,
        }))
        """#

    /// Runs the check on `model` against `mlpc predict --format json` output saved at `predictions`.
    static func run(model: String, predictions: String, images: String, file: StaticString = #filePath, line: UInt = #line) throws
        -> Report
    {
        let folder = try createTemporaryDirectory("mlpc-onnx-check")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let scriptPath = folder + "/check.py"
        try writeFile(scriptPath, script)
        let result = try MLPCProcess.run(
            [scriptPath, model, predictions, images], timeout: 300, executable: try python3())
        XCTAssertEqual(
            result.status, 0, "the ONNX check failed (python3 needs onnx, onnxruntime and numpy; scripts/test installs them):\n\(result.stderr)",
            file: file, line: line)
        guard result.status == 0 else { throw FixtureFailure("the ONNX check failed (reported above)") }
        return try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
    }

    /// The python3 on PATH (the one `pip install` went to).
    static func python3() throws -> String {
        for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let candidate = String(folder) + "/python3"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw XCTSkip("python3 is not installed")
    }
}
