import Foundation
import XCTest

@testable import SpecParser

final class ResolvedSpecTests: XCTestCase {
    var specsDirectory: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("specs").path
    }

    func reload(_ spec: Spec) throws -> Spec {
        let result = SpecLoader.parse(bytes: Array(spec.resolvedYAML.utf8), path: "resolved.yaml")
        XCTAssertEqual(result.diagnostics, [], spec.resolvedYAML)
        return try XCTUnwrap(result.spec, spec.resolvedYAML)
    }


    func testEveryExampleSpecResolvesToAnEquivalentSpec() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: specsDirectory).filter { $0.hasSuffix(".yaml") }
        XCTAssertGreaterThanOrEqual(files.count, 3)
        for file in files {
            let spec = try XCTUnwrap(SpecLoader.load(path: specsDirectory + "/" + file).spec, file)
            let again = try reload(spec)
            XCTAssertEqual(again.resolvedYAML, spec.resolvedYAML, file)
            XCTAssertEqual(again.model.layers.map(\.name.value), spec.model.layers.map(\.name.value), file)
            XCTAssertEqual(again.optimizer.weightDecay.value, spec.optimizer.weightDecay.value, file)
            XCTAssertTrue(again.data.resolvedDirectory.hasPrefix("/"), file)
            XCTAssertTrue(again.data.resolvedDirectory.hasSuffix("/data/mnist"), again.data.resolvedDirectory)
        }
    }

    func testDefaultsAreWrittenOut() throws {
        let text = """
            name: d
            data: {dir: x}
            model:
              input_shape: [4]
              layers: [linear: {out: 2}, gelu, leaky_relu, dropout]
            loss: mse
            optimizer: adamw
            training: {batch_size: 3, epochs: 1}
            """
        let spec = try XCTUnwrap(SpecLoader.parse(bytes: Array(text.utf8), path: "d.yaml").spec)
        let resolved = spec.resolvedYAML
        for expected in [
            "weight_decay: 0.01", "betas: [0.9, 0.999]", "eps: 1e-08", "lr: 0.001", "shuffle: true", "drop_last: false",
            "eval_batch_size: 1000", "- gelu: {approximate: none, name: gelu1}", "- leaky_relu: {negative_slope: 0.01, name: leaky_relu1}",
            "- dropout: {p: 0.5, name: dropout1}", "- linear: {out: 2, bias: true, init: default, name: fc1}",
        ] {
            XCTAssertTrue(resolved.contains(expected), "missing \(expected) in\n\(resolved)")
        }
        _ = try reload(spec)
    }

    /// Every activation a linear can fuse, with and without parameters, resolves to a spec that loads
    /// back to the same text (a parameterised one was once written as invalid YAML).
    func testEveryFusedActivationResolvesToAValidSpec() throws {
        for activation in [
            "relu", "sigmoid", "tanh", "gelu", "leaky_relu", "{gelu: {approximate: tanh}}", "{leaky_relu: {negative_slope: 0.2}}",
        ] {
            let text = """
                name: a
                data: {dir: x}
                model:
                  input_shape: [4]
                  layers: [linear: {out: 3, activation: \(activation)}, linear: {out: 2}]
                loss: cross_entropy
                optimizer: adam
                training: {batch_size: 3, epochs: 1}
                """
            let loaded = SpecLoader.parse(bytes: Array(text.utf8), path: "a.yaml")
            let spec = try XCTUnwrap(loaded.spec, "\(activation): \(loaded.diagnostics)")
            let again = try reload(spec)
            XCTAssertEqual(again.resolvedYAML, spec.resolvedYAML, activation)
            guard case .linear(let first) = again.model.layers[0].kind, case .linear(let original) = spec.model.layers[0].kind else {
                return XCTFail("the first layer is not a linear")
            }
            XCTAssertEqual(first.activation?.value, original.activation?.value, activation)
        }
    }

    func testOddCharactersInTheDataDirectoryAreQuoted() throws {
        let text = "name: q\ndata: {dir: \"a \\\"b\\\" c\\\\d\"}\nmodel: {input_shape: [2], layers: [linear: {out: 2}]}\nloss: mse\noptimizer: adam\ntraining: {batch_size: 1, epochs: 1}\n"
        let spec = try XCTUnwrap(SpecLoader.parse(bytes: Array(text.utf8), path: "q.yaml").spec)
        XCTAssertTrue(try reload(spec).data.resolvedDirectory.hasSuffix("/a \"b\" c\\d"))
    }
}
