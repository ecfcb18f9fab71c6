import XCTest

@testable import SpecParser

/// The `data` section of a table spec: files, target, column types, missing-value strategies, and the
/// loss that fits the target.
final class TableSpecTests: XCTestCase {
    func tableSpec(data: String, loss: String = "cross_entropy", model: String = "layers: [linear: {out: 2}]") -> String {
        """
        name: t
        data:
        \(data.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        model: {\(model)}
        loss: \(loss)
        optimizer: adam
        training: {batch_size: 4, epochs: 1}

        """
    }

    func testATableSpecDecodesWithColumnsAndStrategies() throws {
        let text = tableSpec(data: """
            format: csv
            train: data/train.csv
            test_fraction: 0.2
            target: {column: label, type: category}
            columns:
              age: {type: number, missing: mean}
              color: {type: category, missing: constant, value: none}
              smoker: binary
              city: {type: category, missing: drop_row}
            delimiter: ";"
            """)
        let spec = try XCTUnwrap(decodeClean(text, path: "/specs/t.yaml"))
        let table = try XCTUnwrap(spec.data.table)
        XCTAssertEqual(table.resolvedTrain, "/specs/data/train.csv")
        XCTAssertEqual(table.testFraction?.value, 0.2)
        XCTAssertEqual(table.target.columns.map(\.value), ["label"])
        XCTAssertEqual(table.columns?.map(\.name.value), ["age", "color", "smoker", "city"])
        XCTAssertEqual(table.columns?.map(\.type.value), [.number, .category, .binary, .category])
        XCTAssertEqual(table.columns?.map(\.missing.value), [.mean, .constant("none"), .error, .dropRow])
        XCTAssertEqual(table.delimiter.value, UInt8(ascii: ";"))
        XCTAssertEqual(spec.model.inputShape.value, [], "a table spec may leave input_shape to the data")
        // The resolved spec reads back the same.
        let again = try XCTUnwrap(decodeClean(spec.resolvedYAML, path: "/specs/t.yaml"))
        XCTAssertEqual(again.resolvedYAML, spec.resolvedYAML)
    }

    func testTheTestRowsMustComeFromOnePlace() {
        let both = parse(tableSpec(data: """
            format: csv
            train: a.csv
            test: b.csv
            test_fraction: 0.2
            target: {column: y, type: category}
            """))
        XCTAssertTrue(both.diagnostics.contains { $0.message.contains("exclude each other") }, "\(both.diagnostics)")
        let neither = parse(tableSpec(data: """
            format: csv
            train: a.csv
            target: {column: y, type: category}
            """))
        XCTAssertTrue(neither.diagnostics.contains { $0.message.contains("needs the test rows") }, "\(neither.diagnostics)")
    }

    func testMissingValuesAreTextsOfOneTo64Bytes() throws {
        let data = """
            format: csv
            train: a.csv
            test_fraction: 0.2
            target: {column: y, type: category}
            missing_values: ["NA", "?"]
            """
        let table = try XCTUnwrap(decodeClean(tableSpec(data: data), path: "/specs/t.yaml")?.data.table)
        XCTAssertEqual(table.missingValues.map(\.value), ["NA", "?"])
        let empty = parse(tableSpec(data: data.replacingOccurrences(of: "\"?\"", with: "\"\"")))
        XCTAssertTrue(empty.diagnostics.contains { $0.message.contains("'data.missing_values' entry must be 1 to 64 bytes") }, "\(empty.diagnostics)")
    }

    func testATargetNeedsAType() {
        let result = parse(tableSpec(data: """
            format: csv
            train: a.csv
            test: b.csv
            target: {column: y}
            """))
        XCTAssertTrue(result.diagnostics.contains { $0.message.contains("needs a type") }, "\(result.diagnostics)")
        XCTAssertNil(result.spec)
    }

    func testAnUnknownColumnTypeGetsDidYouMean() {
        let result = parse(tableSpec(data: """
            format: csv
            train: a.csv
            test: b.csv
            target: {column: y, type: category}
            columns: {age: numbr}
            """))
        XCTAssertTrue(result.diagnostics.contains { $0.suggestion == "did you mean 'number'?" }, "\(result.diagnostics)")
    }

    func testRegressionLossesNeedANumberTarget() {
        let classes = parse(tableSpec(data: """
            format: csv
            train: a.csv
            test: b.csv
            target: {column: y, type: category}
            """, loss: "huber"))
        XCTAssertTrue(classes.diagnostics.contains { $0.code == "E0126" && $0.message.contains("regression loss") }, "\(classes.diagnostics)")
        let numbers = parse(tableSpec(data: """
            format: csv
            train: a.csv
            test: b.csv
            target: {columns: [y, z], type: number}
            """, loss: "cross_entropy"))
        XCTAssertTrue(numbers.diagnostics.contains { $0.code == "E0126" && $0.message.contains("category target") }, "\(numbers.diagnostics)")
        let l1 = parse(tableSpec(data: """
            format: csv
            train: a.csv
            test: b.csv
            target: {columns: [y, z], type: number}
            """, loss: "l1"))
        XCTAssertNotNil(l1.spec, "\(l1.diagnostics)")
        let mnist = parse(minimalSpec.replacingOccurrences(of: "loss: cross_entropy", with: "loss: l1"))
        XCTAssertTrue(mnist.diagnostics.contains { $0.code == "E0126" }, "\(mnist.diagnostics)")
    }

    func testMeanNeedsANumberColumn() {
        let result = parse(tableSpec(data: """
            format: csv
            train: a.csv
            test: b.csv
            target: {column: y, type: category}
            columns: {c: {type: category, missing: mean}}
            """))
        XCTAssertTrue(result.diagnostics.contains { $0.message.contains("needs a number column") }, "\(result.diagnostics)")
    }
}
