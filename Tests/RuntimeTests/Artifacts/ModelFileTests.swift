import Foundation
import Planner
import SpecParser
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

final class ModelFileTests: XCTestCase {
    var directory = ""
    var scratch = ""

    override func setUpWithError() throws {
        directory = try TinyData.makeDirectory(self)
        scratch = try makeTemporaryDirectory(self, "mlpc-files")
    }

    func writeModel(_ run: TrainingRun) throws -> String {
        let path = scratch + "/model.safetensors"
        try writeModelFile(
            spec: run.spec, plan: run.plan, parameters: run.trainer.executor.parameters, dataDirectory: directory, mlpcVersion: "test",
            to: path)
        return path
    }

    func testModelFileCarriesTheSpecAndItsDigest() throws {
        let run = try TinyData.run(TinyData.specText(), directory: directory, epochs: 1)
        let file = try SafetensorsFile.read(path: try writeModel(run))
        XCTAssertEqual(file.metadata["spec"], run.spec.resolvedYAML)
        XCTAssertEqual(file.metadata["spec_sha256"], SHA256.hash(Array(run.spec.resolvedYAML.utf8)).hex)
        XCTAssertEqual(file.metadata["format"], "mlpc.model")
        XCTAssertEqual(file.tensors.count, 4)
    }

    func testLoadedModelNeedsNoSpecFileAndEvaluatesAsTheRunDid() throws {
        let run = try TinyData.run(TinyData.specText(), directory: directory, epochs: 3)
        let model = try LoadedModel(path: try writeModel(run), kernels: kernels(for: run.plan.target.isa))
        let test = try loadDatasetSplit(directory: directory, split: .test, classCount: 3, inputShape: model.plan.inputShape)
        let loaded = try model.evaluate(test)
        let original = run.trainer.evaluate(run.data.test, indices: nil)
        XCTAssertEqual(loaded.predictions, original.predictions)
        XCTAssertEqual(loaded.confusion, original.confusion)
        XCTAssertEqual(model.spec.data.resolvedDirectory, directory)
    }

    func testRunDirectoryOpensItsModelFile() throws {
        let run = try TinyData.run(TinyData.specText(), directory: directory, epochs: 1)
        _ = try writeModel(run)
        let model = try LoadedModel(path: scratch, kernels: kernels(for: run.plan.target.isa))
        XCTAssertEqual(model.path, scratch + "/model.safetensors")
    }

    func testTruncatedModelFileNamesTheFile() throws {
        let run = try TinyData.run(TinyData.specText(), directory: directory, epochs: 1)
        let path = try writeModel(run)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count - 10).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try LoadedModel(path: path, kernels: kernels(for: run.plan.target.isa))) { error in
            XCTAssertTrue("\(error)".hasPrefix(path + ": not a usable model file"), "\(error)")
        }
    }

    func testMissingFileAndTextFileAreReportedByName() throws {
        let isa = CPUFeatures.current().bestISA
        XCTAssertThrowsError(try LoadedModel(path: scratch + "/nope.safetensors", kernels: kernels(for: isa))) { error in
            XCTAssertEqual("\(error)", scratch + "/nope.safetensors: no such file")
        }
        let text = scratch + "/notes.txt"
        try Data("hello, this is not a model".utf8).write(to: URL(fileURLWithPath: text))
        XCTAssertThrowsError(try LoadedModel(path: text, kernels: kernels(for: isa))) { error in
            XCTAssertTrue("\(error)".hasPrefix(text + ": not a usable model file"), "\(error)")
        }
    }

    func testWeightsFileWithoutSpecAsksForOne() throws {
        let run = try TinyData.run(TinyData.specText(), directory: directory, epochs: 1)
        let path = scratch + "/weights.safetensors"
        try writeWeightsFile(plan: run.plan, parameters: run.trainer.executor.parameters, to: path)
        XCTAssertThrowsError(try LoadedModel(path: path, kernels: kernels(for: run.plan.target.isa))) { error in
            XCTAssertTrue("\(error)".contains("--spec"), "\(error)")
        }
        let specPath = scratch + "/tiny.yaml"
        try Data(run.spec.sourceText.utf8).write(to: URL(fileURLWithPath: specPath))
        let model = try LoadedModel(
            path: path, specPath: specPath, dataDirectoryOverride: directory, kernels: kernels(for: run.plan.target.isa))
        XCTAssertEqual(model.plan.parameterCount, run.plan.parameterCount)
    }

    func testAlteredSpecInTheMetadataIsRejected() throws {
        let run = try TinyData.run(TinyData.specText(), directory: directory, epochs: 1)
        let path = try writeModel(run)
        var file = try SafetensorsFile.read(path: path)
        file.metadata["spec"] = run.spec.resolvedYAML.replacingOccurrences(of: "out: 16", with: "out: 17")
        try file.write(to: path)
        XCTAssertThrowsError(try LoadedModel(path: path, kernels: kernels(for: run.plan.target.isa))) { error in
            XCTAssertTrue("\(error)".contains("the file was altered"), "\(error)")
        }
    }

    func testClassifyingOneImageAgreesWithBatchEvaluation() throws {
        let run = try TinyData.run(TinyData.specText(), directory: directory, epochs: 3)
        let model = try LoadedModel(path: try writeModel(run), kernels: kernels(for: run.plan.target.isa))
        let evaluation = run.trainer.evaluate(run.data.test, indices: nil)
        for index in 0..<6 {
            let scores = try model.classify(pixels: run.data.test.pixels(at: index)!)
            XCTAssertEqual(scores.predicted, Int(evaluation.predictions[index]))
            XCTAssertEqual(scores.probabilities.reduce(0, +), 1, accuracy: 1e-5)
            XCTAssertEqual(scores.probabilities.firstIndex(of: scores.probabilities.max()!), scores.predicted)
        }
        XCTAssertThrowsError(try model.classify(pixels: [1, 2, 3]))
    }
}
