import Foundation
import TestSupport
import XCTest

/// `mlpc check` and `mlpc run` on CSV tables: the header checked against the spec, located errors for
/// bad cells and hostile files (exit 1, under a second, no crash), a classifier trained end to end.
final class CSVTableTests: XCTestCase {
    static let spec = """
        name: table
        seed: 3
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
            - linear: {out: 8, activation: relu}
            - linear: {out: 2}
        loss: cross_entropy
        optimizer: {kind: adam, lr: 0.01}
        training: {batch_size: 4, epochs: 2, eval_batch_size: 4}

        """

    /// 16 rows: the label is "hi" when age > 8.
    static let rows = (0..<16).map { i in "\(Double(i) + 0.5),\(["red", "blue", "green"][i % 3]),\(i % 2 == 0 ? "yes" : "no"),\(i > 8 ? "hi" : "lo")" }

    func folder(csv: [UInt8], spec: String = CSVTableTests.spec) throws -> String {
        let folder = try makeTemporaryDirectory(self, "mlpc-csv")
        try writeFile(folder + "/table.yaml", spec)
        FileManager.default.createFile(atPath: folder + "/train.csv", contents: Data(csv))
        return folder
    }

    func csv(_ lines: [String]) -> [UInt8] { Array((lines.joined(separator: "\n") + "\n").utf8) }

    func check(_ folder: String) throws -> CommandResult {
        let result = try MLPCProcess.run(["check", folder + "/table.yaml"])
        assertNoCrash(result)
        return result
    }

    /// Exit 1 in under a second, with `expected` in the messages.
    func assertLocatedError(_ result: CommandResult, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(result.status, 1, result.stderr, file: file, line: line)
        XCTAssertTrue(result.stderr.contains(expected), "expected '\(expected)' in: \(result.stderr)", file: file, line: line)
        XCTAssertLessThan(result.seconds, 1.0, file: file, line: line)
    }

    func testCheckReportsRowsColumnsWidthAndClasses() throws {
        let folder = try folder(csv: csv(["age,color,smoker,label"] + CSVTableTests.rows))
        let result = try check(folder)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("data: 16 rows, 4 columns; 12 training rows, 4 test rows"), result.stdout)
        // age 1 + color (3 seen + unseen bucket) 4 + smoker 1
        XCTAssertTrue(result.stdout.contains("inputs: 6 after encoding"), result.stdout)
        XCTAssertTrue(result.stdout.contains("target: label, 2 classes: hi, lo"), result.stdout)
    }

    func testAMisspelledColumnGetsDidYouMeanAtTheSpecLine() throws {
        let folder = try folder(csv: csv(["age,colour,smoker,label"] + CSVTableTests.rows))
        let result = try check(folder)
        assertLocatedError(result, "table.yaml:10:5: error: ")
        XCTAssertTrue(result.stderr.contains("has no column 'color'"), result.stderr)
        XCTAssertTrue(result.stderr.contains("did you mean 'colour'?"), result.stderr)
    }

    func testEveryBadCellIsLocatedInOnePass() throws {
        var rows = CSVTableTests.rows
        rows[3] = "abc,red,yes,lo"
        rows[7] = "7.5,blue,maybe,lo"
        let folder = try folder(csv: csv(["age,color,smoker,label"] + rows))
        let result = try check(folder)
        assertLocatedError(result, "train.csv:5:1: 'abc' is not a number in column 'age'")
        XCTAssertTrue(result.stderr.contains("train.csv:9:3: 'maybe' is not a binary value"), result.stderr)
    }

    func testBadCellsAreCappedAndCounted() throws {
        let rows = (0..<500).map { "x\($0),red,yes,lo" }
        let folder = try folder(csv: csv(["age,color,smoker,label"] + rows))
        let result = try check(folder)
        assertLocatedError(result, "more problems")
        XCTAssertLessThanOrEqual(result.stderr.components(separatedBy: "is not a number").count - 1, 20)
    }

    func testRaggedRows() throws {
        var rows = CSVTableTests.rows
        rows[2] += ",extra"
        let folder = try folder(csv: csv(["age,color,smoker,label"] + rows))
        assertLocatedError(try check(folder), "train.csv:4: the row has 5 fields but the header has 4")
    }

    func testBinaryGarbageAndNULBytes() throws {
        var garbage = csv(["age,color,smoker,label", CSVTableTests.rows[0]])
        var generator = UInt64(0x1234_5678)
        for _ in 0..<100_000 {
            generator = generator &* 6_364_136_223_846_793_005 &+ 1
            garbage.append(UInt8(truncatingIfNeeded: generator >> 56))
        }
        assertLocatedError(try check(try folder(csv: garbage)), "train.csv:")
        let nul = csv(["age,color,smoker,label", CSVTableTests.rows[0]]) + [0x31, 0x00, 0x32]
        assertLocatedError(try check(try folder(csv: nul)), "train.csv:3: a NUL byte")
    }

    func testInvalidUTF8InACategory() throws {
        let bytes = csv(["age,color,smoker,label"] + CSVTableTests.rows.prefix(3)) + Array("1.5,r".utf8) + [0xC3, 0x28] + Array(",yes,lo\n".utf8)
        assertLocatedError(try check(try folder(csv: bytes)), "train.csv:5:2: 'r\\xC3(' is not valid UTF-8 text in column 'color'")
    }

    func testHeaderOnlyAndEmptyFile() throws {
        assertLocatedError(try check(try folder(csv: csv(["age,color,smoker,label"]))), "train.csv: the file has a header but no rows")
        assertLocatedError(try check(try folder(csv: [])), "train.csv:1: the file is empty")
    }

    func testDuplicateColumnNames() throws {
        let folder = try folder(csv: csv(["age,color,age,label"] + CSVTableTests.rows))
        assertLocatedError(try check(folder), "train.csv:1:3: duplicate column name 'age' (also column 1)")
    }

    /// A file of one enormous line: refused at the row-length limit (16 MiB) before libcsv buffers
    /// more of it; the file here is 24 MiB of digits without a line break, which takes the same path
    /// a 2 GB line would (the reader stops at the limit whatever follows).
    func testOneHugeLineStopsAtTheRowLimit() throws {
        var bytes = Array("age,color,smoker,label\n".utf8)
        bytes += [UInt8](repeating: UInt8(ascii: "7"), count: 24 << 20)
        assertLocatedError(try check(try folder(csv: bytes)), "train.csv:2: a row longer than 16 MiB")
    }

    func testQuotedFieldsWithDelimitersAndLineBreaks() throws {
        var rows = CSVTableTests.rows
        rows[0] = "0.5,\"re,\nd\",yes,lo"
        let folder = try folder(csv: csv(["age,color,smoker,label"] + rows))
        let result = try check(folder)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("data: 16 rows, 4 columns"), result.stdout)
    }

    func testAClassifierTrainsEndToEnd() throws {
        let folder = try folder(csv: csv(["age,color,smoker,label"] + CSVTableTests.rows))
        let result = try MLPCProcess.run(["run", folder + "/table.yaml", "--out", folder + "/run"])
        assertNoCrash(result)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("Epoch [2/2]"), result.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/run/model.safetensors"))
        let spec = try String(contentsOfFile: folder + "/run/spec.yaml", encoding: .utf8)
        XCTAssertTrue(spec.contains("input_shape: [6]"), spec)
    }
}

extension CSVTableTests {
    /// The table's float32 rows go through the same gather and kernels: 1 and 2 threads give the same weights.
    func testTableTrainingIsBitIdenticalAcrossThreadCounts() throws {
        let folder = try folder(csv: csv(["age,color,smoker,label"] + CSVTableTests.rows))
        var weights: [Data] = []
        for threads in ["1", "2"] {
            let out = folder + "/run\(threads)"
            let result = try MLPCProcess.run(["run", folder + "/table.yaml", "--threads", threads, "--out", out, "--quiet"])
            assertNoCrash(result)
            XCTAssertEqual(result.status, 0, result.stderr)
            weights.append(try Data(contentsOf: URL(fileURLWithPath: out + "/weights.safetensors")))
        }
        XCTAssertEqual(weights[0], weights[1])
    }
}

extension CSVTableTests {
    /// y = 3 x1 - 2 x2 + 5, exactly: a regressor learns it and reports MAE, RMSE and R² per epoch.
    func testARegressorTrainsAndReportsItsMetrics() throws {
        var lines = ["x1,x2,y"]
        var random = SplitMix64(state: 9)
        for _ in 0..<400 {
            let x1 = Double(random.next() % 2000) / 100 - 10, x2 = Double(random.next() % 2000) / 100 - 10
            lines.append("\(x1),\(x2),\(3 * x1 - 2 * x2 + 5)")
        }
        let spec = """
            name: reg
            data:
              format: csv
              train: train.csv
              test_fraction: 0.25
              target: {column: y, type: number}
            model:
              layers:
                - linear: {out: 16, activation: tanh}
                - linear: {out: 1}
            loss: huber
            optimizer: {kind: adam, lr: 0.01}
            training: {batch_size: 16, epochs: 40}

            """
        let folder = try folder(csv: csv(lines), spec: spec)
        var weights: [Data] = []
        for threads in ["1", "2"] {
            let out = folder + "/run\(threads)"
            let result = try MLPCProcess.run(["run", folder + "/table.yaml", "--threads", threads, "--out", out])
            assertNoCrash(result)
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertTrue(result.stdout.contains("test MAE"), result.stdout)
            weights.append(try Data(contentsOf: URL(fileURLWithPath: out + "/weights.safetensors")))
            let run = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/run.json"))) as! [String: Any]
            let r2 = try XCTUnwrap(run["test_r2"] as? Double)
            XCTAssertGreaterThan(r2, 0.99)
            XCTAssertNil(run["test_accuracy"])
            XCTAssertEqual((run["epoch_test_r2"] as? [Double])?.count, 40)
            let metrics = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8)
            XCTAssertTrue(metrics.contains("\"test_rmse\""), metrics)
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/regression.png"))
        }
        XCTAssertEqual(weights[0], weights[1])
    }
}

extension CSVTableTests {
    /// The model file keeps the preprocessing: predict reads raw rows (target optional, columns in any
    /// order) and writes CSV; eval reports the metrics on a CSV with targets.
    func testPredictAndEvalReadRawRowsWithTheSavedPreprocessing() throws {
        let folder = try folder(csv: csv(["age,color,smoker,label"] + CSVTableTests.rows))
        let run = try MLPCProcess.run(["run", folder + "/table.yaml", "--out", folder + "/run", "--quiet"])
        XCTAssertEqual(run.status, 0, run.stderr)
        // Columns reordered, no target, a colour never seen in training.
        try writeFile(folder + "/rows.csv", "smoker,color,age\nyes,red,1.5\nno,purple,12.5\n")
        let predicted = try MLPCProcess.run(["predict", folder + "/run", "--csv", folder + "/rows.csv"])
        assertNoCrash(predicted)
        XCTAssertEqual(predicted.status, 0, predicted.stderr)
        let lines = predicted.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "line,predicted_label,p_hi,p_lo")
        XCTAssertEqual(lines.count, 3, predicted.stdout)
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",")
            XCTAssertTrue(["hi", "lo"].contains(String(fields[1])), line)
            XCTAssertEqual(Double(fields[2])! + Double(fields[3])!, 1, accuracy: 1e-5, line)
        }
        // --out writes the same text to a file.
        let written = try MLPCProcess.run(["predict", folder + "/run", "--csv", folder + "/rows.csv", "--out", folder + "/p.csv"])
        XCTAssertEqual(written.status, 0, written.stderr)
        XCTAssertEqual(try String(contentsOfFile: folder + "/p.csv", encoding: .utf8), predicted.stdout)

        let evaluated = try MLPCProcess.run(["eval", folder + "/run", "--csv", folder + "/train.csv"])
        assertNoCrash(evaluated)
        XCTAssertEqual(evaluated.status, 0, evaluated.stderr)
        XCTAssertTrue(evaluated.stdout.contains("on 16 rows"), evaluated.stdout)
        XCTAssertTrue(evaluated.stdout.contains("classes: 0 hi, 1 lo"), evaluated.stdout)

        // eval needs the target; a bad cell is located as in training.
        let noTarget = try MLPCProcess.run(["eval", folder + "/run", "--csv", folder + "/rows.csv"])
        XCTAssertEqual(noTarget.status, 1)
        XCTAssertTrue(noTarget.stderr.contains("no column 'label', the model's target"), noTarget.stderr)
        try writeFile(folder + "/bad.csv", "age,color,smoker\n1.5,red,yes\nold,red,yes\n")
        let bad = try MLPCProcess.run(["predict", folder + "/run", "--csv", folder + "/bad.csv"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("bad.csv:3:1: 'old' is not a number in column 'age'"), bad.stderr)
    }
}

extension CSVTableTests {
    /// A table run resumed from its checkpoint ends with the weights of an uninterrupted run; a table
    /// model asks for --csv rather than looking for images.
    func testATableRunResumesToTheSameWeightsAndItsModelAsksForCSV() throws {
        let folder = try folder(csv: csv(["age,color,smoker,label"] + CSVTableTests.rows))
        let straight = try MLPCProcess.run(["run", folder + "/table.yaml", "--epochs", "4", "--out", folder + "/straight", "--quiet"])
        XCTAssertEqual(straight.status, 0, straight.stderr)
        let first = try MLPCProcess.run(["run", folder + "/table.yaml", "--epochs", "2", "--out", folder + "/resumed", "--quiet"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let resumed = try MLPCProcess.run(["run", "--resume", folder + "/resumed", "--epochs", "4", "--quiet"])
        assertNoCrash(resumed)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: folder + "/straight/weights.safetensors")),
            try Data(contentsOf: URL(fileURLWithPath: folder + "/resumed/weights.safetensors")))
        let eval = try MLPCProcess.run(["eval", folder + "/straight"])
        XCTAssertEqual(eval.status, 2)
        XCTAssertTrue(eval.stderr.contains("--csv FILE"), eval.stderr)
    }
}

extension CSVTableTests {
    /// `mlpc run --seed S` is the run of the spec with `seed: S`: the seed draws the test rows too.
    /// run.json names the CSV file with its SHA-256.
    func testRunSeedDrawsTheTestRowsAndRunJSONHashesTheFile() throws {
        let folder = try folder(csv: csv(["age,color,smoker,label"] + CSVTableTests.rows))
        try writeFile(folder + "/seeded.yaml", CSVTableTests.spec.replacingOccurrences(of: "seed: 3", with: "seed: 11"))
        var weights: [Data] = []
        for (spec, flags) in [("table.yaml", ["--seed", "11"]), ("seeded.yaml", []), ("table.yaml", [])] {
            let out = folder + "/run\(weights.count)"
            let result = try MLPCProcess.run(["run", folder + "/" + spec, "--out", out, "--quiet"] + flags)
            assertNoCrash(result)
            XCTAssertEqual(result.status, 0, result.stderr)
            weights.append(try Data(contentsOf: URL(fileURLWithPath: out + "/weights.safetensors")))
        }
        XCTAssertEqual(weights[0], weights[1])
        XCTAssertNotEqual(weights[0], weights[2])
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/run0/run.json"))) as? [String: Any]
        let sums = record?["data_sha256"] as? [String: String]
        let sha256sum = Process()
        sha256sum.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        sha256sum.arguments = [folder + "/train.csv"]
        let pipe = Pipe()
        sha256sum.standardOutput = pipe
        try sha256sum.run()
        let expected = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).prefix(64)
        sha256sum.waitUntilExit()
        XCTAssertEqual(sums, ["train.csv": String(expected)])
    }
}

extension CSVTableTests {
    /// `missing_values` texts are read as empty cells, in training and (saved in the model) in prediction.
    func testMissingValueTextsAreEmptyCellsInTrainingAndPrediction() throws {
        var rows = CSVTableTests.rows
        rows[1] = "NA,blue,no,lo"
        rows[5] = "?,green,no,lo"
        let spec = CSVTableTests.spec.replacingOccurrences(of: "    age: number\n", with: "    age: {type: number, missing: mean}\n")
        let folder = try folder(csv: csv(["age,color,smoker,label"] + rows), spec: spec)
        assertLocatedError(try check(folder), "train.csv:3:1: 'NA' is not a number in column 'age'")
        try writeFile(folder + "/table.yaml", spec.replacingOccurrences(of: "  test_fraction: 0.25\n", with: "  test_fraction: 0.25\n  missing_values: [NA, \"?\"]\n"))
        let run = try MLPCProcess.run(["run", folder + "/table.yaml", "--out", folder + "/run", "--quiet"])
        assertNoCrash(run)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(try String(contentsOfFile: folder + "/run/spec.yaml", encoding: .utf8).contains("missing_values: [\"NA\", \"?\"]"))
        try writeFile(folder + "/rows.csv", "age,color,smoker\nNA,red,yes\n?,red,yes\n")
        let predicted = try MLPCProcess.run(["predict", folder + "/run", "--csv", folder + "/rows.csv"])
        assertNoCrash(predicted)
        XCTAssertEqual(predicted.status, 0, predicted.stderr)
        XCTAssertEqual(predicted.stdout.split(separator: "\n").count, 3, predicted.stdout)
        // Without a fill, a missing-value text is located like an empty cell.
        try writeFile(folder + "/table.yaml", spec.replacingOccurrences(of: "{type: number, missing: mean}", with: "number").replacingOccurrences(of: "  test_fraction: 0.25\n", with: "  test_fraction: 0.25\n  missing_values: [NA]\n"))
        assertLocatedError(try check(folder), "train.csv:3:1: missing value in column 'age'")
    }
}
