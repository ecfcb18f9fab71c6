import Foundation
import KernelInterface
import SpecParser
import XCTest

@testable import DataSources

/// The table loader: statistics from the training split only, one-hot with an unseen bucket, the
/// missing-value strategies, test files whose columns come in another order, and number parsing.
final class TableLoadingTests: XCTestCase {
    func load(_ data: String, files: [String: String], loss: String = "cross_entropy", memoryBytes: Int = 1 << 30) throws -> LoadedTable {
        let folder = try makeTemporaryDirectory(self, "mlpc-table")
        for (name, text) in files { try text.write(toFile: folder + "/" + name, atomically: true, encoding: .utf8) }
        let text = """
            name: t
            data:
            \(data.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
            model: {layers: [linear: {out: 2}]}
            loss: \(loss)
            optimizer: adam
            training: {batch_size: 2, epochs: 1}

            """
        let result = SpecLoader.parse(bytes: Array(text.utf8), path: folder + "/t.yaml")
        let table = try XCTUnwrap(result.spec?.data.table, "\(result.diagnostics)")
        return try loadTable(table, seed: 0, memoryBytes: memoryBytes)
    }

    func floats(_ data: TableDataset) -> [Float] {
        guard case .float32(let values) = data.samples else { return [] }
        return values
    }

    func testStatisticsComeFromTheTrainingRowsOnlyAndUnseenValuesGoToTheBucket() throws {
        let table = try load(
            """
            format: csv
            train: train.csv
            test: test.csv
            target: {column: y, type: category}
            columns: {x: number, c: category}
            """,
            files: ["train.csv": "x,c,y\n1,a,p\n2,b,q\n3,a,p\n", "test.csv": "y,c,x\nq,z,100\n"])
        let p = table.preprocessing
        XCTAssertEqual(p.features[0].mean, 2)
        XCTAssertEqual(p.features[0].std, (2.0 / 3).squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(p.features[1].vocabulary, ["a", "b"])
        XCTAssertEqual(p.inputWidth, 4)
        XCTAssertEqual(p.classNames, ["p", "q"])
        let train = floats(table.train)
        XCTAssertEqual(train[0], Float((1 - 2) / (2.0 / 3).squareRoot()))
        XCTAssertEqual(Array(train[1..<4]), [1, 0, 0])
        // The test file names its columns in another order; 'z' was never seen in training.
        XCTAssertEqual(floats(table.test), [Float((100 - 2) / (2.0 / 3).squareRoot()), 0, 0, 1])
        guard case .classes(let labels, let classes) = table.test.targets else { return XCTFail("expected classes") }
        XCTAssertEqual(labels, [1])
        XCTAssertEqual(classes, 2)
    }

    func testMissingValueStrategies() throws {
        let table = try load(
            """
            format: csv
            train: train.csv
            test_fraction: 0.2
            target: {column: y, type: category}
            columns:
              m: {type: number, missing: mean}
              k: {type: number, missing: constant, value: -4}
              c: {type: category, missing: mode}
              d: {type: number, missing: drop_row}
            """,
            files: ["train.csv": "m,k,c,d,y\n1,1,u,1,p\n,1,v,1,q\n3,,v,1,p\n3,1,,1,q\n5,5,u,,p\n1,1,v,1,q\n"])
        XCTAssertEqual(table.fileRows, 5, "the row with an empty 'd' is dropped")
        XCTAssertEqual(table.train.count + table.test.count, 5)
        let p = table.preprocessing
        XCTAssertEqual(p.features[2].fill, "v")
        XCTAssertEqual(p.features[1].fill, "-4")
        XCTAssertNotNil(Double(p.features[0].fill ?? ""))
    }

    func testAnEmptyCellIsAnErrorByDefault() throws {
        XCTAssertThrowsError(
            try load(
                "format: csv\ntrain: train.csv\ntest_fraction: 0.5\ntarget: {column: y, type: category}",
                files: ["train.csv": "x,y\n1,p\n,q\n3,p\n"])
        ) { error in
            XCTAssertTrue("\(error)".contains("train.csv:3:1: empty cell in column 'x'"), "\(error)")
        }
    }

    func testTheTestFractionIsSeededAndDisjoint() throws {
        let rows = (0..<100).map { "\($0),\($0 % 2 == 0 ? "e" : "o")" }.joined(separator: "\n")
        let spec = "format: csv\ntrain: train.csv\ntest_fraction: 0.3\ntarget: {column: y, type: category}"
        let a = try load(spec, files: ["train.csv": "x,y\n" + rows + "\n"])
        let b = try load(spec, files: ["train.csv": "x,y\n" + rows + "\n"])
        XCTAssertEqual(a.test.count, 30)
        XCTAssertEqual(a.train.count, 70)
        XCTAssertEqual(floats(a.test), floats(b.test))
    }

    func testRegressionTargetsAreStandardizedWithTheTrainingRows() throws {
        let table = try load(
            "format: csv\ntrain: train.csv\ntest: test.csv\ntarget: {columns: [y, z], type: number}",
            files: ["train.csv": "x,y,z\n1,10,0\n2,20,0\n3,30,0\n", "test.csv": "x,y,z\n4,40,1\n"], loss: "mse")
        XCTAssertEqual(table.preprocessing.targetMeans, [20, 0])
        XCTAssertEqual(table.preprocessing.targetStds[1], 1, "a constant column keeps its scale")
        guard case .values(let values, let width) = table.test.targets else { return XCTFail("expected values") }
        XCTAssertEqual(width, 2)
        XCTAssertEqual(values, [Float(20 / (200.0 / 3).squareRoot()), 1])
        XCTAssertEqual(table.test.targetOffsets, [20, 0])
    }

    /// 20,000 rows of 3 floats need 240 KB: with 100 KB of memory the loader says so after the first
    /// 4,096 rows, from the file's size, before reading the rest.
    func testATableThatCannotFitIsRefusedBeforeItIsRead() throws {
        let rows = (0..<20_000).map { "\($0).5,\($0 % 7),\($0 % 2 == 0 ? "e" : "o")" }.joined(separator: "\n")
        XCTAssertThrowsError(
            try load(
                "format: csv\ntrain: train.csv\ntest_fraction: 0.5\ntarget: {column: y, type: category}",
                files: ["train.csv": "a,b,y\n" + rows + "\n"], memoryBytes: 100_000)
        ) { error in
            XCTAssertTrue("\(error)".contains("rows of 3 columns need"), "\(error)")
            XCTAssertTrue("\(error)".contains("more than the"), "\(error)")
        }
    }

    func testDecimalParsingMatchesStrtod() {
        var random = SplitMix64Reference(state: 5)
        var texts = ["0", "-0", "1e10", "1E-5", "+3.25", ".5", "5.", "123456789012345678901234", "3.4028235e38", "1e-45", "0.1", "-2.5e-3"]
        for _ in 0..<20000 {
            let mantissa = random.next() % 100_000_000_000
            let scale = Int(random.next() % 30) - 15
            texts.append("\(random.next() % 2 == 0 ? "-" : "")\(mantissa)e\(scale)")
            texts.append("\(Double(bitPattern: 0x3FF0_0000_0000_0000 | (random.next() >> 12)) * 1000)")
        }
        for text in texts {
            let expected = Float(strtod(text, nil))
            let parsed = text.utf8CString.withUnsafeBufferPointer { buffer in
                buffer.baseAddress!.withMemoryRebound(to: UInt8.self, capacity: buffer.count) { parseDecimalFloat($0, buffer.count - 1) }
            }
            XCTAssertEqual(parsed, expected, text)
        }
        for bad in ["", "-", "e5", "1e", "abc", "1.2.3", "inf", "nan", "0x10", "1 2", "1,5"] {
            let parsed = bad.utf8CString.withUnsafeBufferPointer { buffer in
                buffer.baseAddress!.withMemoryRebound(to: UInt8.self, capacity: buffer.count) { parseDecimalFloat($0, buffer.count - 1) }
            }
            XCTAssertNil(parsed, bad)
        }
    }
}

/// SplitMix64 for the test's own numbers.
struct SplitMix64Reference {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
