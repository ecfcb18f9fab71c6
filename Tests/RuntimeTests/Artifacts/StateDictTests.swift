import Foundation
import Planner
import SpecParser
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

final class StateDictTests: XCTestCase {
    var directory = ""
    var scratch = ""

    override func setUpWithError() throws {
        directory = try TinyData.makeDirectory(self)
        scratch = try makeTemporaryDirectory(self, "mlpc-files")
    }

    func testWeightsFileHoldsPyTorchNamesShapesAndValuesOutOfThePanels() throws {
        let run = try TinyData.run(TinyData.specText(), directory: directory, epochs: 1)
        let path = scratch + "/weights.safetensors"
        try writeWeightsFile(plan: run.plan, parameters: run.trainer.executor.parameters, to: path)
        let file = try SafetensorsFile.read(path: path)
        XCTAssertEqual(file.tensors.map(\.name), ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"])
        XCTAssertEqual(file.tensor(named: "fc1.weight")?.shape, [16, 36])
        XCTAssertEqual(file.tensor(named: "fc2.weight")?.shape, [3, 16])
        XCTAssertEqual(file.metadata, [:])
        let fc1 = try XCTUnwrap(run.plan.parameters.first { $0.name == "fc1.weight" })
        let stored = run.trainer.executor.parameters + fc1.offset
        let weight = try XCTUnwrap(file.tensor(named: "fc1.weight"))
        // PyTorch's weight[o][i] is in mlpc's panels of 32 output features: panel o / 32, row i, lane o % 32.
        for (o, i) in [(0, 0), (3, 17), (15, 35)] {
            XCTAssertEqual(weight.values[o * 36 + i].bitPattern, stored[i * 32 + o].bitPattern)
        }
    }

    /// The row-by-row read of a weight's panels gives every element where `storedIndex` says it is,
    /// including a weight whose output features do not fill its last panel (40 = 32 + 8).
    func testPyTorchOrderValuesFollowStoredIndex() throws {
        let text = TinyData.specText(layers: "    - flatten\n    - linear: {out: 40, activation: relu}\n    - linear: {out: 3}")
        let (_, plan) = try TinyData.plan(text)
        let block = UnsafeMutablePointer<Float>.allocate(capacity: plan.parameterBlockFloats)
        defer { block.deallocate() }
        for i in 0..<plan.parameterBlockFloats { block[i] = Float(i) }
        for tensor in plan.parameters {
            let values = pyTorchOrderValues(of: tensor, in: block)
            XCTAssertEqual(values.count, tensor.count, tensor.name)
            for index in 0..<tensor.count where values[index] != block[tensor.offset + tensor.storedIndex(index)] {
                return XCTFail("\(tensor.name)[\(index)] is \(values[index]), stored at \(tensor.offset + tensor.storedIndex(index))")
            }
        }
    }

    func testStateDictRoundTripIsBitExact() throws {
        let run = try TinyData.run(TinyData.specText(), directory: directory, epochs: 1)
        let plan = run.plan
        let file = SafetensorsFile(tensors: stateDictTensors(plan: plan, block: run.trainer.executor.parameters))
        let copy = UnsafeMutablePointer<Float>.allocate(capacity: plan.parameterBlockFloats)
        defer { copy.deallocate() }
        copy.initialize(repeating: .nan, count: plan.parameterBlockFloats)
        try loadStateDict(file, path: "memory", plan: plan, into: copy)
        for i in 0..<plan.parameterBlockFloats {
            XCTAssertEqual(copy[i].bitPattern, run.trainer.executor.parameters[i].bitPattern, "float \(i)")
        }
    }

    /// The file is read by Python's own safetensors and the forward pass done in numpy, from the file
    /// alone; the logits must be mlpc's.
    func testNumpyForwardPassOfTheWeightsFileGivesMlpcsLogits() throws {
        let run = try TinyData.run(TinyData.specText(), directory: directory, epochs: 5)
        let weightsPath = scratch + "/weights.safetensors"
        try writeWeightsFile(plan: run.plan, parameters: run.trainer.executor.parameters, to: weightsPath)
        let modelPath = scratch + "/model.safetensors"
        try writeModelFile(
            spec: run.spec, plan: run.plan, parameters: run.trainer.executor.parameters, dataDirectory: directory, mlpcVersion: "test",
            to: modelPath)
        let model = try LoadedModel(path: modelPath, kernels: kernels(for: run.plan.target.isa))
        let test = run.data.test
        let rows = [0, 1, 2, 5]
        let imagesPath = scratch + "/images.u8"
        try Data(rows.flatMap { test.pixels(at: $0)! }).write(to: URL(fileURLWithPath: imagesPath))
        let script = """
            import sys, numpy as np
            from safetensors.numpy import load_file
            w = load_file(sys.argv[1])
            x = np.fromfile(sys.argv[2], dtype=np.uint8).reshape(-1, 36).astype(np.float32)
            x = (x / 255.0 - 0.5) / 0.5
            h = np.maximum(x @ w['fc1.weight'].T + w['fc1.bias'], 0)
            logits = h @ w['fc2.weight'].T + w['fc2.bias']
            for row in logits: print(' '.join(repr(float(v)) for v in row))
            """
        let result = try Self.runPython3(script, arguments: [weightsPath, imagesPath])
        XCTAssertEqual(result.status, 0, "python3 needs safetensors and numpy (scripts/test installs them): \(result.error)")
        let lines = result.output.split(separator: "\n")
        XCTAssertEqual(lines.count, rows.count)
        for (line, row) in zip(lines, rows) {
            let numpyLogits = line.split(separator: " ").compactMap { Float(String($0)) }
            let mlpc = try model.classify(pixels: test.pixels(at: row)!)
            XCTAssertEqual(numpyLogits.count, 3)
            for (a, b) in zip(numpyLogits, mlpc.scores) { XCTAssertEqual(a, b, accuracy: 1e-4 * max(1, abs(b)), "row \(row)") }
            XCTAssertEqual(numpyLogits.firstIndex(of: numpyLogits.max()!), mlpc.predicted)
        }
    }

    func testShapeMismatchNamesTheTensorAndTheSpecLine() throws {
        let run = try TinyData.run(TinyData.specText(), directory: directory, epochs: 1)
        let file = SafetensorsFile(tensors: stateDictTensors(plan: run.plan, block: run.trainer.executor.parameters))
        let (_, wider, _) = try TinyData.prepare(
            TinyData.specText(layers: "    - flatten\n    - linear: {out: 20, activation: relu}\n    - linear: {out: 3}"),
            directory: directory)
        let line = try XCTUnwrap(wider.parameters.first { $0.name == "fc1.weight" }?.location.line)
        XCTAssertThrowsError(try checkStateDict(file, path: "w.safetensors", plan: wider)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("fc1.weight: the file has [16, 36], tiny.yaml:\(line) says [20, 36]"), text)
            XCTAssertTrue(text.contains("fc2.weight: the file has [3, 16]"), text)
            XCTAssertTrue(text.hasPrefix("w.safetensors:"), text)
        }
    }

    func testMissingAndExtraTensorsAreBothReported() throws {
        let run = try TinyData.run(TinyData.specText(), directory: directory, epochs: 1)
        var tensors = stateDictTensors(plan: run.plan, block: run.trainer.executor.parameters)
        tensors.removeAll { $0.name == "fc2.bias" }
        tensors.append(SafetensorsTensor(name: "fc9.weight", shape: [1], values: [0]))
        XCTAssertThrowsError(try checkStateDict(SafetensorsFile(tensors: tensors), path: "w.safetensors", plan: run.plan)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("fc2.bias is missing"), text)
            XCTAssertTrue(text.contains("fc9.weight [1] is not a parameter of the model"), text)
        }
    }

    func testNonFiniteValueIsRejected() throws {
        let run = try TinyData.run(TinyData.specText(), directory: directory, epochs: 1)
        var tensors = stateDictTensors(plan: run.plan, block: run.trainer.executor.parameters)
        let index = try XCTUnwrap(tensors.firstIndex { $0.name == "fc1.bias" })
        tensors[index].values[2] = .infinity
        XCTAssertThrowsError(try checkStateDict(SafetensorsFile(tensors: tensors), path: "w.safetensors", plan: run.plan)) { error in
            XCTAssertTrue("\(error)".contains("fc1.bias"), "\(error)")
            XCTAssertTrue("\(error)".contains("element 2"), "\(error)")
        }
    }

    /// Runs the `python3` found on PATH (the one `pip install safetensors numpy` went to).
    static func runPython3(_ script: String, arguments: [String]) throws -> FileFixtures.PythonResult {
        let result = try FileFixtures.runProcess("/usr/bin/env", ["python3", "-c", script] + arguments)
        if result.status == 127 { throw XCTSkip("python3 is not installed") }
        return result
    }
}
