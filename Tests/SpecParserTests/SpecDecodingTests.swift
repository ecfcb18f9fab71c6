import XCTest

@testable import SpecParser

/// What a valid spec decodes to: defaults, names, the layer grammar and the data directory.
final class SpecDecodingTests: XCTestCase {
    func testMinimalSpecGetsPyTorchDefaults() throws {
        let spec = try XCTUnwrap(decodeClean(minimalSpec))
        XCTAssertEqual(spec.seed.value, 0)
        XCTAssertEqual(spec.data.mean.value, 0)
        XCTAssertEqual(spec.data.std.value, 1)
        XCTAssertEqual(spec.data.validationFraction.value, 0)
        XCTAssertEqual(spec.optimizer.momentum.value, 0)
        XCTAssertEqual(spec.optimizer.dampening.value, 0)
        XCTAssertFalse(spec.optimizer.nesterov.value)
        XCTAssertEqual(spec.optimizer.weightDecay.value, 0)
        XCTAssertTrue(spec.training.shuffle.value)
        XCTAssertFalse(spec.training.dropLast.value)
        XCTAssertNil(spec.training.threads)
        XCTAssertEqual(spec.training.evalBatchSize.value, 1000)
        guard case .linear(let linear) = spec.model.layers.first?.kind else { return XCTFail("expected a linear") }
        XCTAssertTrue(linear.bias.value)
        XCTAssertEqual(linear.initialization.value, .pytorchDefault)
        XCTAssertNil(linear.activation)
    }

    func testDefaultedFieldPointsAtItsSection() throws {
        let spec = try XCTUnwrap(decodeClean(minimalSpec))
        XCTAssertEqual(spec.training.shuffle.location, spec.training.location)
        XCTAssertEqual(spec.training.location.line, 9, "the 'training' key")
    }

    func testAdamDefaults() throws {
        let spec = try XCTUnwrap(decodeClean(minimalSpec.replacingOccurrences(of: "{kind: sgd, lr: 0.1}", with: "adam")))
        XCTAssertEqual(spec.optimizer.kind.value, .adam)
        XCTAssertEqual(spec.optimizer.lr.value, 1e-3)
        XCTAssertEqual(spec.optimizer.beta1.value, 0.9)
        XCTAssertEqual(spec.optimizer.beta2.value, 0.999)
        XCTAssertEqual(spec.optimizer.eps.value, 1e-8)
        XCTAssertEqual(spec.optimizer.weightDecay.value, 0)
    }

    func testAdamWWeightDecayDefaultsToOneHundredth() throws {
        let spec = try XCTUnwrap(decodeClean(minimalSpec.replacingOccurrences(of: "{kind: sgd, lr: 0.1}", with: "{kind: adamw}")))
        XCTAssertEqual(spec.optimizer.weightDecay.value, 0.01)
    }

    func testSGDRequiresLearningRate() {
        let result = parse(minimalSpec.replacingOccurrences(of: "{kind: sgd, lr: 0.1}", with: "{kind: sgd}"))
        XCTAssertEqual(result.diagnostics.map(\.code), ["E0121"])
    }

    func testLossAsMapping() throws {
        let spec = try XCTUnwrap(decodeClean(minimalSpec.replacingOccurrences(of: "loss: cross_entropy", with: "loss: {kind: mse}")))
        XCTAssertEqual(spec.loss.kind.value, .mse)
    }

    func testLayerGrammarBareAndMappingForms() throws {
        let layers = """
                - flatten
                - flatten: {}
                - linear: {out: 8, name: hidden, bias: false, init: kaiming_normal}
                - relu
                - leaky_relu: {negative_slope: 0.2}
                - gelu: {approximate: tanh}
                - gelu:
                - sigmoid
                - tanh
                - dropout: {p: 0.25}
                - dropout
                - linear: {out: 2}
            """
        let spec = try XCTUnwrap(decodeClean(minimalSpec.replacingOccurrences(of: "    - linear: {out: 2}", with: layers)))
        XCTAssertEqual(
            spec.model.layers.map(\.name.value),
            ["flatten1", "flatten2", "hidden", "relu1", "leaky_relu1", "gelu1", "gelu2", "sigmoid1", "tanh1", "dropout1",
             "dropout2", "fc2"])
        let kinds = spec.model.layers.map(\.kind)
        XCTAssertEqual(kinds[0], .flatten)
        XCTAssertEqual(
            kinds[2],
            .linear(LinearSpec(
                outFeatures: Located(8, at: SourceLocation(file: "spec.yaml", line: 8, column: 21)),
                bias: Located(false, at: SourceLocation(file: "spec.yaml", line: 8, column: 44)),
                initialization: Located(.kaimingNormal, at: SourceLocation(file: "spec.yaml", line: 8, column: 57)),
                activation: nil)))
        guard case .activation(let leaky) = kinds[4], case .activation(let geluTanh) = kinds[5],
            case .activation(let geluExact) = kinds[6], case .dropout(let p) = kinds[9], case .dropout(let defaultP) = kinds[10]
        else { return XCTFail("unexpected kinds \(kinds)") }
        XCTAssertEqual(leaky.value, .leakyRelu(negativeSlope: 0.2))
        XCTAssertEqual(geluTanh.value, .gelu(tanhApproximation: true))
        XCTAssertEqual(geluExact.value, .gelu(tanhApproximation: false))
        XCTAssertEqual(p.value, 0.25)
        XCTAssertEqual(defaultP.value, 0.5, "PyTorch's default dropout probability")
    }

    func testLinearActivationWithParameters() throws {
        let spec = try XCTUnwrap(decodeClean(minimalSpec.replacingOccurrences(
            of: "    - linear: {out: 2}",
            with: "    - linear: {out: 3, activation: {leaky_relu: {negative_slope: 0.1}}}\n    - linear: {out: 2}")))
        guard case .linear(let linear) = spec.model.layers.first?.kind else { return XCTFail("expected a linear") }
        XCTAssertEqual(linear.activation?.value, .leakyRelu(negativeSlope: 0.1))
    }

    func testLinearNamesCountLinearsOnly() throws {
        let spec = try XCTUnwrap(decodeClean(minimalSpec.replacingOccurrences(
            of: "    - linear: {out: 2}",
            with: "    - flatten\n    - linear: {out: 3}\n    - relu\n    - linear: {out: 3}\n    - relu\n    - linear: {out: 2}")))
        XCTAssertEqual(spec.model.layers.map(\.name.value), ["flatten1", "fc1", "relu1", "fc2", "relu2", "fc3"])
    }

    func testLayerLocationIsItsListItem() throws {
        let spec = try XCTUnwrap(decodeClean(minimalSpec))
        XCTAssertEqual(spec.model.layers.first?.location, SourceLocation(file: "spec.yaml", line: 6, column: 7))
        XCTAssertEqual(spec.model.inputShape, Located([4], at: SourceLocation(file: "spec.yaml", line: 4, column: 16)))
    }

    func testRelativeDataDirectoryResolvesAgainstTheSpecFolder() throws {
        let spec = try XCTUnwrap(decodeClean(
            minimalSpec.replacingOccurrences(of: "{dir: data}", with: "{dir: ../data/mnist}"), path: "specs/a.yaml"))
        XCTAssertEqual(spec.data.directory.value, "../data/mnist")
        XCTAssertEqual(spec.data.resolvedDirectory, "specs/../data/mnist")
    }

    func testRelativeDataDirectoryOfASpecInTheWorkingDirectory() throws {
        let spec = try XCTUnwrap(decodeClean(minimalSpec, path: "a.yaml"))
        XCTAssertEqual(spec.data.resolvedDirectory, "data")
    }

    func testAbsoluteDataDirectoryIsKept() throws {
        let spec = try XCTUnwrap(decodeClean(
            minimalSpec.replacingOccurrences(of: "{dir: data}", with: "{dir: /srv/mnist}"), path: "specs/a.yaml"))
        XCTAssertEqual(spec.data.resolvedDirectory, "/srv/mnist")
    }

    func testDataDirectoryOverrideReplacesTheSpecsDirectory() throws {
        let spec = try XCTUnwrap(decodeClean(minimalSpec, path: "specs/a.yaml", dataDirectoryOverride: "shared/mnist"))
        XCTAssertEqual(spec.data.directory.value, "shared/mnist")
        XCTAssertEqual(spec.data.resolvedDirectory, "shared/mnist", "an override is relative to the working directory")
        XCTAssertEqual(spec.data.directory.location.line, 2, "it points at the dir it replaces")
    }

    func testDataSectionMayBeOmittedWithAnOverride() throws {
        let text = minimalSpec.replacingOccurrences(of: "data: {dir: data}\n", with: "")
        XCTAssertEqual(parse(text).diagnostics.map(\.code), ["E0121"])
        let spec = try XCTUnwrap(decodeClean(text, dataDirectoryOverride: "/data"))
        XCTAssertEqual(spec.data.resolvedDirectory, "/data")
    }

    func testNormalizeNeedsMeanAndStd() {
        let text = minimalSpec.replacingOccurrences(of: "{dir: data}", with: "{dir: data, normalize: {mean: 0.5}}")
        XCTAssertEqual(parse(text).diagnostics.map(\.code), ["E0121"])
    }

    func testNumbersAcceptExponents() throws {
        let spec = try XCTUnwrap(decodeClean(minimalSpec.replacingOccurrences(of: "lr: 0.1", with: "lr: 1e-3")))
        XCTAssertEqual(spec.optimizer.lr.value, 1e-3)
    }

    func testSeedAcceptsFullUnsignedRange() throws {
        let spec = try XCTUnwrap(decodeClean("seed: 18446744073709551615\n" + minimalSpec))
        XCTAssertEqual(spec.seed.value, UInt64.max)
        XCTAssertEqual(parse("seed: -1\n" + minimalSpec).diagnostics.map(\.code), ["E0123"])
    }

    func testThreadsWhenGiven() throws {
        let spec = try XCTUnwrap(decodeClean(minimalSpec.replacingOccurrences(of: "epochs: 1}", with: "epochs: 1, threads: 2}")))
        XCTAssertEqual(spec.training.threads?.value, 2)
    }

    func testSpecKeepsItsPathAndText() throws {
        let spec = try XCTUnwrap(decodeClean(minimalSpec, path: "x/y.yaml"))
        XCTAssertEqual(spec.path, "x/y.yaml")
        XCTAssertEqual(spec.sourceText, minimalSpec)
    }

    func testYAML11BooleansAreRefused() {
        let text = minimalSpec.replacingOccurrences(of: "epochs: 1}", with: "epochs: 1, shuffle: yes}")
        XCTAssertEqual(parse(text).diagnostics.map(\.code), ["E0122"])
    }

    func testSpecIsNilWhenAnyErrorIsFound() {
        let result = parse(minimalSpec.replacingOccurrences(of: "epochs: 1", with: "epochs: 0"))
        XCTAssertNil(result.spec)
        XCTAssertEqual(result.diagnostics.map(\.code), ["E0123"])
    }
}
