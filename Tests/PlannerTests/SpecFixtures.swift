import SpecParser
import XCTest

@testable import Planner

/// Specs built directly as values, so planner tests do not depend on YAML.
enum SpecFixtures {
    static func at(_ line: Int, _ column: Int = 1) -> SourceLocation { SourceLocation(file: "test.yaml", line: line, column: column) }

    static func linear(_ name: String, _ out: Int, _ activation: Activation? = nil, bias: Bool = true, line: Int = 10) -> LayerSpec {
        LayerSpec(
            name: Located(name, at: at(line)),
            kind: .linear(
                LinearSpec(
                    outFeatures: Located(out, at: at(line, 5)), bias: Located(bias, at: at(line)),
                    initialization: Located(.pytorchDefault, at: at(line)), activation: activation.map { Located($0, at: at(line, 9)) })),
            location: at(line))
    }

    static func flatten(line: Int = 9) -> LayerSpec { LayerSpec(name: Located("flatten1", at: at(line)), kind: .flatten, location: at(line)) }

    static func activation(_ name: String, _ activation: Activation, line: Int = 11) -> LayerSpec {
        LayerSpec(name: Located(name, at: at(line)), kind: .activation(Located(activation, at: at(line))), location: at(line))
    }

    static func dropout(_ name: String, _ p: Double, line: Int = 12) -> LayerSpec {
        LayerSpec(name: Located(name, at: at(line)), kind: .dropout(p: Located(p, at: at(line))), location: at(line))
    }

    static func spec(
        input: [Int] = [1, 28, 28], layers: [LayerSpec], loss: LossKind = .crossEntropy, optimizer: OptimizerKind = .adam,
        momentum: Double = 0, batch: Int = 64, evalBatch: Int = 1000
    ) -> Spec {
        let l = at(1)
        return Spec(
            name: Located("test", at: l), seed: Located(0, at: l),
            data: DataSpec(
                directory: Located("data", at: l), resolvedDirectory: "data", mean: Located(0.5, at: l), std: Located(0.5, at: l),
                validationFraction: Located(0, at: l), location: l),
            model: ModelSpec(inputShape: Located(input, at: at(8)), layers: layers, location: at(7)),
            loss: LossSpec(kind: Located(loss, at: at(30)), location: at(30)),
            optimizer: OptimizerSpec(
                kind: Located(optimizer, at: at(32)), lr: Located(1e-3, at: l), momentum: Located(momentum, at: l),
                dampening: Located(0, at: l), nesterov: Located(false, at: l), beta1: Located(0.9, at: l),
                beta2: Located(0.999, at: l), eps: Located(1e-8, at: l), weightDecay: Located(0, at: l), location: at(32)),
            training: TrainingSpec(
                batchSize: Located(batch, at: at(40)), epochs: Located(20, at: l), shuffle: Located(true, at: l),
                dropLast: Located(false, at: l), threads: nil, evalBatchSize: Located(evalBatch, at: l), location: at(39)),
            path: "test.yaml", sourceText: "")
    }

    /// The PyTorch tutorial's MLP: 784-128-64-10, ReLU, cross-entropy, Adam, batch 64.
    static var reference: Spec {
        spec(layers: [flatten(), linear("fc1", 128, .relu, line: 10), linear("fc2", 64, .relu, line: 11), linear("fc3", 10, line: 12)])
    }
}

extension SpecFixtures {
    /// Plans `spec` for the reference target on `threads` threads; a diagnostic with an error fails the
    /// calling test.
    static func plan(_ spec: Spec = reference, threads: Int = 2, file: StaticString = #filePath, line: UInt = #line) throws -> Plan {
        var target = Target.reference
        target.threads = threads
        let (plan, diagnostics) = makePlan(spec, target: target)
        XCTAssertFalse(diagnostics.hasErrors, "\(diagnostics)", file: file, line: line)
        return try XCTUnwrap(plan, file: file, line: line)
    }
}
