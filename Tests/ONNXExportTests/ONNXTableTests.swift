import Foundation
import Planner
import SpecParser
import XCTest

@testable import ONNXExport
@testable import ONNXProto

/// The graph of a table model: the standardization's constants per input column, the regressor's
/// output in the target's units, and the columns described in the doc string and metadata.
final class ONNXTableTests: XCTestCase {
    /// age (number), color (category: blue, red + the unseen bucket), smoker (binary): 5 input values.
    static func table(classNames: [String], targetMeans: [Double] = [], targetStds: [Double] = []) -> ONNXTable {
        ONNXTable(
            columns: [
                .init(name: "age", type: .number, mean: 38.5, std: 12.25, vocabulary: [], missing: "mean", fill: "38.5", offset: 0, width: 1),
                .init(name: "color", type: .category, mean: 0, std: 1, vocabulary: ["blue", "red"], missing: "error", fill: nil, offset: 1, width: 3),
                .init(name: "smoker", type: .binary, mean: 0, std: 1, vocabulary: [], missing: "error", fill: nil, offset: 4, width: 1),
            ],
            width: 5, targetColumns: classNames.isEmpty ? ["y", "z"] : ["label"], classNames: classNames, targetMeans: targetMeans,
            targetStds: targetStds)
    }

    func export(outputs: Int, table: ONNXTable, inputShape: String = "[5]") throws -> Onnx_ModelProto {
        let (spec, plan) = try ONNXModelTests.planned(
            ONNXModelTests.specText(layers: "    - linear: {out: 4, activation: relu}\n    - linear: {out: \(outputs)}", inputShape: inputShape))
        let model = try makeONNXModel(spec: spec, plan: plan, tensors: ONNXModelTests.tensors(for: plan), mlpcVersion: "test", table: table)
        return try Onnx_ModelProto(serializedBytes: try model.serializedBytes() as [UInt8])
    }

    func initializer(_ model: Onnx_ModelProto, _ name: String) throws -> [Float] {
        let tensor = try XCTUnwrap(model.graph.initializer.first { $0.name == name }, name)
        let bytes = [UInt8](tensor.rawData)
        return stride(from: 0, to: bytes.count, by: 4).map { i in
            Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
        }
    }

    func testClassifierStandardizesNumberColumnsOnlyAndNamesTheColumns() throws {
        let model = try export(outputs: 2, table: Self.table(classNames: ["no", "yes"]))
        XCTAssertEqual(model.graph.input.map(\.name), ["features"])
        XCTAssertEqual(Array(model.graph.node.map(\.opType).prefix(2)), ["Sub", "Div"])
        XCTAssertEqual(model.graph.node[0].input, ["features", "features.mean"])
        XCTAssertEqual(try initializer(model, "features.mean"), [38.5, 0, 0, 0, 0])
        XCTAssertEqual(try initializer(model, "features.std"), [12.25, 1, 1, 1, 1])
        XCTAssertEqual(model.graph.output.map(\.name), ["logits", "probabilities"])
        let metadata = Dictionary(uniqueKeysWithValues: model.metadataProps.map { ($0.key, $0.value) })
        XCTAssertEqual(metadata["class_names"], #"["no","yes"]"#)
        XCTAssertNil(metadata["normalize_mean"])
        let columns = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(try XCTUnwrap(metadata["input_columns"]).utf8)) as? [[String: Any]])
        XCTAssertEqual(columns.map { $0["name"] as? String }, ["age", "color", "smoker"])
        XCTAssertEqual(columns[1]["categories"] as? [String], ["blue", "red"])
        XCTAssertEqual(columns[1]["unseen_column"] as? Int, 3)
        XCTAssertEqual(columns[0]["fill"] as? String, "38.5")
        for text in [
            "column 0: 'age', number: the raw value (the graph standardizes it: (x - 38.5) / 12.25)",
            "columns 1-3: 'color', category, one-hot: 1 'blue', 2 'red', 3 any value training did not see",
            "column 4: 'smoker', binary", "an empty cell is given '38.5' (missing: mean)", "0 'no', 1 'yes'",
        ] {
            XCTAssertTrue(model.docString.contains(text), "'\(text)' missing from: \(model.docString)")
        }
    }

    func testRegressorOutputsPredictionsInTheTargetsUnits() throws {
        // Two number targets (the tiny spec's cross_entropy only lets the planner accept two outputs).
        let model = try export(outputs: 2, table: Self.table(classNames: [], targetMeans: [150.5, -2], targetStds: [75.25, 0.5]))
        XCTAssertEqual(model.graph.output.map(\.name), ["predictions"])
        XCTAssertEqual(Array(model.graph.node.map(\.opType).suffix(2)), ["Mul", "Add"])
        XCTAssertFalse(model.graph.node.contains { $0.opType == "Softmax" })
        XCTAssertEqual(try initializer(model, "targets.std"), [75.25, 0.5])
        XCTAssertEqual(try initializer(model, "targets.mean"), [150.5, -2])
        XCTAssertTrue(model.docString.contains("Output 'predictions'"), model.docString)
        XCTAssertTrue(model.docString.contains("column 0 'y' = output * 75.25 + 150.5, column 1 'z' = output * 0.5 + -2.0"), model.docString)
    }

    func testAWidthThatIsNotTheModelsInputIsAnError() throws {
        XCTAssertThrowsError(try export(outputs: 2, table: Self.table(classNames: ["a", "b"]), inputShape: "[6]")) { error in
            XCTAssertTrue("\(error)".contains("5 input values"), "\(error)")
        }
    }
}
