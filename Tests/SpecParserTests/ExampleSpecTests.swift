import Foundation
import XCTest

@testable import SpecParser

/// The specs shipped in specs/ and the reference document stay correct.
final class ExampleSpecTests: XCTestCase {
    private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    private func exampleSpecs() throws -> [URL] {
        let folder = repository.appendingPathComponent("specs")
        return try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "yaml" }.sorted { $0.path < $1.path }
    }

    func testEveryExampleSpecLoadsWithoutDiagnostics() throws {
        let specs = try exampleSpecs()
        XCTAssertGreaterThanOrEqual(specs.count, 4)
        for url in specs {
            let result = SpecLoader.load(path: url.path)
            XCTAssertNil(result.fileError, url.lastPathComponent)
            XCTAssertEqual(result.diagnostics, [], url.lastPathComponent)
            XCTAssertNotNil(result.spec, url.lastPathComponent)
        }
    }

    func testReferenceSpecIsThePyTorchTutorialModel() throws {
        let path = repository.appendingPathComponent("specs/mnist_mlp.yaml").path
        let spec = try XCTUnwrap(SpecLoader.load(path: path).spec)
        XCTAssertEqual(spec.name.value, "mnist_mlp")
        XCTAssertEqual(spec.seed.value, 0)
        XCTAssertEqual(spec.data.resolvedDirectory, repository.appendingPathComponent("specs").path + "/../data/mnist")
        XCTAssertEqual(spec.data.mean.value, 0.5)
        XCTAssertEqual(spec.data.std.value, 0.5)
        XCTAssertEqual(spec.model.inputShape.value, [1, 28, 28])
        XCTAssertEqual(spec.model.layers.map(\.name.value), ["flatten1", "fc1", "fc2", "fc3"])
        let outs: [Int] = spec.model.layers.compactMap {
            if case .linear(let linear) = $0.kind { return linear.outFeatures.value }
            return nil
        }
        XCTAssertEqual(outs, [128, 64, 10])
        XCTAssertEqual(spec.loss.kind.value, .crossEntropy)
        XCTAssertEqual(spec.optimizer.kind.value, .adam)
        XCTAssertEqual(spec.optimizer.lr.value, 0.001)
        XCTAssertEqual(spec.training.batchSize.value, 64)
        XCTAssertEqual(spec.training.epochs.value, 20)
        XCTAssertTrue(spec.training.shuffle.value)
    }

    func testEveryDiagnosticCodeIsDocumented() throws {
        let reference = try String(
            contentsOf: repository.appendingPathComponent("docs/spec-reference.md"), encoding: .utf8)
        for code in SpecDiagnosticCode.allCases {
            XCTAssertTrue(reference.contains("### \(code.rawValue)"), "\(code.rawValue) is not documented")
        }
    }
}
