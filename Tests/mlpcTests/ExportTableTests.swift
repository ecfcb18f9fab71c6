import Foundation
import TestSupport
import XCTest

/// `mlpc export` of models trained on CSV tables: the graph takes the encoded feature vector that the
/// metadata describes (numbers raw, categories one-hot with the unseen bucket, binaries 0/1) and
/// standardizes it itself; fed the rows that `mlpc predict --csv --format json` read, encoded by the
/// metadata alone, ONNX Runtime gives its outputs.
final class ExportTableTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = try makeTemporaryDirectory(self, "mlpc-export-table")
    }

    /// 48 rows: the class is "hi" when 0.2 age + (red: 1) > 3.
    static func classifierRows(_ range: Range<Int>) -> [String] {
        range.map { i in
            let age = Double(i % 24) + 0.25, color = ["red", "blue", "green"][i % 3], smoker = i % 4 < 2
            return "\(age),\(color),\(smoker ? "Yes" : "no"),\(0.2 * age + (color == "red" ? 1 : 0) > 3 ? "hi" : "lo")"
        }
    }

    /// y = 0.5 x1 - 0.25 x2 + (kind b: 1) + (flag: 0.5) + a wobble, all of modest size.
    static func regressorRows(_ range: Range<Int>) -> [String] {
        range.map { i in
            let x1 = Double(i % 11) * 0.3 - 1, x2 = Double((i * 7) % 13) * 0.1, kind = ["a", "b"][i % 2], flag = i % 3 == 0
            let y = 0.5 * x1 - 0.25 * x2 + (kind == "b" ? 1 : 0) + (flag ? 0.5 : 0) + Double(i % 5) * 0.01
            return "\(x1),\(x2),\(kind),\(flag ? "t" : "f"),\(y)"
        }
    }

    func train(_ spec: String, csv: [String]) throws -> String {
        try writeFile(folder + "/train.csv", csv.joined(separator: "\n") + "\n")
        try writeFile(folder + "/table.yaml", spec)
        let out = folder + "/run"
        let result = try MLPCProcess.run(["run", folder + "/table.yaml", "--out", out, "--quiet"], timeout: 300)
        assertNoCrash(result)
        XCTAssertEqual(result.status, 0, result.stderr)
        guard result.status == 0 else { throw FixtureFailure("training failed (reported above)") }
        return out
    }

    /// Exports `run`, has `mlpc predict --csv rows --format json` predict the rows, and checks the model in
    /// ONNX Runtime on them.
    func exportAndCompare(run: String, rows: [String]) throws -> TableONNXCheck.Report {
        let rowsPath = folder + "/rows.csv"
        try writeFile(rowsPath, rows.joined(separator: "\n") + "\n")
        let onnx = folder + "/model.onnx"
        let exported = try MLPCProcess.run(["export", run, "-o", onnx], timeout: 120)
        assertNoCrash(exported)
        XCTAssertEqual(exported.status, 0, exported.stderr)
        let predicted = try MLPCProcess.run(["predict", run, "--csv", rowsPath, "--format", "json"], timeout: 120)
        assertNoCrash(predicted)
        XCTAssertEqual(predicted.status, 0, predicted.stderr)
        let predictions = folder + "/predictions.json"
        try writeFile(predictions, predicted.stdout)
        let report = try TableONNXCheck.run(model: onnx, predictions: predictions, rows: rowsPath)
        XCTAssertEqual(report.rows, rows.count - 1)
        XCTAssertEqual(report.irVersion, 8)
        XCTAssertEqual(report.opsets, ["": 17])
        XCTAssertEqual(report.inputs, ["features"])
        XCTAssertEqual(report.initializersAmongInputs, [])
        XCTAssertLessThanOrEqual(report.maxDifference, 1e-5)
        XCTAssertTrue(report.docString.contains("Input 'features': float32 [batch, \(report.width)]"), report.docString)
        XCTAssertEqual(report.metadata["input_name"], "features")
        XCTAssertEqual(report.metadata["input_shape"], "[batch, \(report.width)]")
        return report
    }

    func testCSVClassifierMatchesPredictInONNXRuntime() throws {
        let spec = """
            name: table_classifier
            seed: 4
            data:
              format: csv
              train: train.csv
              test_fraction: 0.25
              target: {column: label, type: category}
              columns:
                age: number
                color: category
                smoker: binary
            model:
              layers:
                - linear: {out: 8, activation: tanh}
                - linear: {out: 2}
            loss: cross_entropy
            optimizer: {kind: adam, lr: 0.02}
            training: {batch_size: 8, epochs: 20}

            """
        let run = try train(spec, csv: ["age,color,smoker,label"] + Self.classifierRows(0..<48))
        // Rows to predict, without the target, one with a colour training never saw (the bucket column).
        let rows = ["smoker,color,age"] + Self.classifierRows(48..<70).map { row in
            let f = row.split(separator: ",")
            return "\(f[2]),\(f[1]),\(f[0])"
        } + ["true,purple,19.5"]
        let report = try exportAndCompare(run: run, rows: rows)
        // age 1 + color (3 seen + unseen bucket) 4 + smoker 1
        XCTAssertEqual(report.width, 6)
        XCTAssertEqual(report.outputs, ["logits", "probabilities"])
        XCTAssertEqual(report.kind, "probabilities")
        XCTAssertTrue(report.classesEqual, "ONNX Runtime's classes differ from mlpc predict's")
        XCTAssertEqual(report.opTypes, ["Sub", "Div", "Gemm", "Tanh", "Gemm", "Softmax"])
        XCTAssertEqual(report.metadata["class_names"], #"["hi","lo"]"#)
        XCTAssertTrue(report.docString.contains("columns 1-4: 'color', category, one-hot: 1 'blue', 2 'green', 3 'red', 4 any value"), report.docString)
        XCTAssertTrue(report.usedUnseenBucket, "no row exercised the unseen-value column")
        // weights.safetensors has no preprocessing, so its input columns are unknown: refused, nothing written.
        let refused = try MLPCProcess.run(["export", run + "/weights.safetensors", "--spec", run + "/spec.yaml", "-o", folder + "/w.onnx"])
        assertNoCrash(refused)
        XCTAssertEqual(refused.status, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("no table preprocessing"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/w.onnx"))
    }

    func testCSVRegressorMatchesPredictInONNXRuntime() throws {
        let spec = """
            name: table_regressor
            seed: 2
            data:
              format: csv
              train: train.csv
              test_fraction: 0.2
              target: {column: y, type: number}
              columns:
                x1: number
                x2: number
                kind: category
                flag: binary
            model:
              layers:
                - linear: {out: 12, activation: relu}
                - linear: {out: 1}
            loss: mse
            optimizer: {kind: adam, lr: 0.01}
            training: {batch_size: 8, epochs: 20}

            """
        let run = try train(spec, csv: ["x1,x2,kind,flag,y"] + Self.regressorRows(0..<60))
        let rows = ["x1,x2,kind,flag,y"] + Self.regressorRows(60..<90) + ["0.5,0.5,c,f,1"]
        let report = try exportAndCompare(run: run, rows: rows)
        // x1, x2, kind (a, b + bucket), flag
        XCTAssertEqual(report.width, 6)
        XCTAssertEqual(report.outputs, ["predictions"])
        XCTAssertEqual(report.kind, "predictions")
        XCTAssertFalse(report.opTypes.contains("Softmax"), "\(report.opTypes)")
        XCTAssertEqual(report.metadata["target_columns"], #"["y"]"#)
        XCTAssertNotNil(report.metadata["output_predictions"])
        XCTAssertTrue(report.usedUnseenBucket, "no row exercised the unseen-value column")
        // The predictions are in the target's units, not standardized: they vary as y does.
        XCTAssertGreaterThan(report.predictionRange, 1)
    }
}

/// Runs an exported table model with Python's onnx and onnxruntime: the checker with full_check, then
/// the rows of a CSV file encoded from the model's metadata (input_columns) alone, compared with
/// `mlpc predict --csv --format json`'s values for the same lines.
enum TableONNXCheck {
    struct Report: Decodable {
        var irVersion: Int
        var opsets: [String: Int]
        var inputs: [String]
        var width: Int
        var outputs: [String]
        var initializersAmongInputs: [String]
        var opTypes: [String]
        var rows: Int
        var kind: String
        var maxDifference: Double
        var classesEqual: Bool
        var usedUnseenBucket: Bool
        var predictionRange: Double
        var metadata: [String: String]
        var docString: String

        enum CodingKeys: String, CodingKey {
            case irVersion = "ir_version", opsets, inputs, width, outputs, initializersAmongInputs = "initializers_among_inputs",
                opTypes = "op_types", rows, kind, maxDifference = "max_difference", classesEqual = "classes_equal",
                usedUnseenBucket = "used_unseen_bucket", predictionRange = "prediction_range", metadata, docString = "doc_string"
        }
    }

    static let script = #"""
        import csv, json, sys
        import numpy as np
        import onnx, onnx.checker
        import onnxruntime as ort

        model_path, predictions_path, rows_path = sys.argv[1:4]
        model = onnx.load(model_path)
        onnx.checker.check_model(model, full_check=True)
        graph = model.graph
        metadata = {p.key: p.value for p in model.metadata_props}
        columns = json.loads(metadata["input_columns"])
        width = int(graph.input[0].type.tensor_type.shape.dim[1].dim_value)

        with open(rows_path, newline="") as f:
            table = list(csv.reader(f))
        header, lines = table[0], table[1:]
        report = json.load(open(predictions_path))
        features = np.zeros((len(report["rows"]), width), dtype=np.float32)
        unseen = False
        for r, row in enumerate(report["rows"]):
            cells = dict(zip(header, lines[row["line"] - 2]))
            for c in columns:
                value = cells[c["name"]]
                if c["type"] == "number":
                    features[r, c["offset"]] = np.float32(value)
                elif c["type"] == "binary":
                    features[r, c["offset"]] = 1.0 if value.lower() in ("1", "true", "yes", "y", "t") else 0.0
                else:
                    known = c["categories"]
                    index = c["offset"] + known.index(value) if value in known else c["unseen_column"]
                    unseen |= value not in known
                    features[r, index] = 1.0

        session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
        outputs = [o.name for o in graph.output]
        kind = report["kind"]
        name = {"probabilities": "probabilities", "outputs": "logits", "predictions": "predictions"}[kind]
        got = session.run([name], {graph.input[0].name: features})[0]
        expected = np.array([row["values"] for row in report["rows"]], dtype=np.float64)
        classes_equal = True
        if kind != "predictions":
            names = report["columns"]
            classes_equal = all(names[int(i)] == row["predicted"] for i, row in zip(got.argmax(1), report["rows"]))
        print(json.dumps({
            "ir_version": model.ir_version,
            "opsets": {o.domain: o.version for o in model.opset_import},
            "inputs": [i.name for i in graph.input],
            "width": width,
            "outputs": outputs,
            "initializers_among_inputs": [i.name for i in graph.input if i.name in {t.name for t in graph.initializer}],
            "op_types": [n.op_type for n in graph.node],
            "rows": len(report["rows"]),
            "kind": kind,
            "max_difference": float(np.abs(got.astype(np.float64) - expected).max()),
            "classes_equal": bool(classes_equal),
            "used_unseen_bucket": unseen,
            "prediction_range": float(got.max() - got.min()),
            "metadata": metadata,
            "doc_string": model.doc_string,
        }))
        """#

    static func run(model: String, predictions: String, rows: String, file: StaticString = #filePath, line: UInt = #line) throws -> Report {
        let folder = try createTemporaryDirectory("mlpc-onnx-table-check")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let scriptPath = folder + "/check.py"
        try writeFile(scriptPath, script)
        let result = try MLPCProcess.run([scriptPath, model, predictions, rows], timeout: 300, executable: try ONNXRuntimeCheck.python3())
        XCTAssertEqual(
            result.status, 0, "the ONNX check failed (python3 needs onnx, onnxruntime and numpy; scripts/test installs them):\n\(result.stderr)",
            file: file, line: line)
        guard result.status == 0 else { throw FixtureFailure("the ONNX check failed (reported above)") }
        return try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
    }
}
