import XCTest

@testable import SpecParser

/// One test per diagnostic code: a tiny fixture, the position marked inside it.
final class DiagnosticCodeTests: XCTestCase {
    func testE0100SyntaxErrorCarriesLibyamlProblemAndPosition() {
        let marked = "name: 2️⃣\"abc\n1️⃣"
        let diagnostic = expectDiagnostic(.yamlSyntax, in: marked, messageContains: "YAML syntax error: found unexpected end of stream")
        XCTAssertEqual(diagnostic?.notes.first?.message, "while scanning a quoted scalar")
        XCTAssertEqual(diagnostic?.notes.first?.location, MarkedFixture(marked).markers["2️⃣"], "libyaml's context: where the quote opened")
    }

    func testE0101InvalidUTF8PointsAtTheByte() {
        var bytes = Array("name: ab".utf8)
        bytes.append(0xFF)
        let result = SpecLoader.parse(bytes: bytes, path: "spec.yaml")
        XCTAssertEqual(result.diagnostics.map(\.code), ["E0101"])
        XCTAssertEqual(result.diagnostics.first?.location, SourceLocation(file: "spec.yaml", line: 1, column: 9))
    }

    func testE0102EmptyFile() {
        expectDiagnostic(.emptySpec, in: "1️⃣")
    }

    func testE0102DocumentWithOnlyComments() {
        expectDiagnostic(.emptySpec, in: "1️⃣# nothing here\n")
    }

    func testE0103SecondDocument() {
        expectDiagnostic(.multipleDocuments, in: "name: a\n1️⃣---\nname: b\n")
    }

    func testE0104Anchor() {
        expectDiagnostic(.anchorOrAlias, in: "name: 1️⃣&n tiny\n", messageContains: "anchors")
    }

    func testE0104Alias() {
        expectDiagnostic(.anchorOrAlias, in: "seed: 1\nname: 1️⃣*x\n", messageContains: "aliases")
    }

    func testE0105NestingDeeperThanTheBound() {
        let depth = YAMLReader.maximumDepth
        // The 65th opening bracket is the first one past the bound (columns count from 1).
        let text = String(repeating: "[", count: depth + 10)
        let result = parse(text)
        XCTAssertEqual(result.diagnostics.map(\.code), ["E0105"])
        XCTAssertEqual(result.diagnostics.first?.location?.column, depth + 1)
    }

    func testE0106Tag() {
        expectDiagnostic(.tag, in: "seed: 1️⃣!!int 5\n")
    }

    func testE0107ListAsMappingKey() {
        expectDiagnostic(.nonScalarKey, in: "? 1️⃣[a, b]\n: 1\n")
    }

    func testE0108DuplicateKeyWithNoteToFirst() {
        let fixture = MarkedFixture("training:\n  2️⃣epochs: 1\n  1️⃣epochs: 2\n")
        let diagnostic = expectDiagnostic(.duplicateKey, in: "training:\n  2️⃣epochs: 1\n  1️⃣epochs: 2\n")
        XCTAssertEqual(diagnostic?.notes.first?.location, fixture.markers["2️⃣"])
    }

    func testE0109TooManyProblemsAreCountedNotKept() {
        let text = (0..<(DiagnosticList.limit + 50)).map { "unknown_\($0): 1" }.joined(separator: "\n")
        let result = parse(text)
        XCTAssertEqual(result.diagnostics.count, DiagnosticList.limit + 1)
        let last = result.diagnostics.last
        XCTAssertEqual(last?.code, "E0109")
        XCTAssertNil(last?.location)
        XCTAssertTrue(last?.message.contains("more not shown") ?? false)
    }

    func testE0120UnknownKeyWithDidYouMean() {
        expectDiagnostic(
            .unknownKey, in: "training:\n  batch_size: 2\n  1️⃣epoch: 3\n", suggestion: "did you mean 'epochs'?")
    }

    func testE0120KeyOfAnotherSectionAtTopLevel() {
        expectDiagnostic(.unknownKey, in: "1️⃣momentum: 0.9\n", suggestion: "'momentum' belongs in 'optimizer'")
    }

    func testE0120PyTorchNameForLinearOut() {
        expectDiagnostic(
            .unknownKey, in: "model:\n  layers:\n    - linear: {1️⃣out_features: 3}\n", suggestion: "did you mean 'out'?")
    }

    /// A parameter given to an activation that takes none: the note says so rather than listing nothing.
    func testE0120ParameterOfAnActivationWithoutParameters() {
        let diagnostic = expectDiagnostic(
            .unknownKey, in: "model:\n  layers:\n    - linear: {out: 3, activation: {sigmoid: {1️⃣slope: 1}}}\n")
        XCTAssertEqual(diagnostic?.notes.map(\.message), ["'model.layers[0].linear.activation.sigmoid' takes no parameters"])
    }

    func testE0121MissingRequiredKeyPointsAtItsSection() {
        expectDiagnostic(.missingKey, in: "name: x\n1️⃣optimizer: {kind: sgd}\n", messageContains: "'lr'")
    }

    func testE0122WrongType() {
        expectDiagnostic(
            .wrongType, in: "training:\n  batch_size: 1️⃣abc\n", messageContains: "expected an integer for 'training.batch_size', found 'abc'")
    }

    func testE0122QuotedNumberIsText() {
        expectDiagnostic(.wrongType, in: "training:\n  epochs: 1️⃣\"3\"\n", messageContains: "quoted string '3'")
    }

    func testE0122RootIsAList() {
        expectDiagnostic(.wrongType, in: "1️⃣- a\n- b\n", messageContains: "found a list")
    }

    func testE0123ValueOutOfRange() {
        expectDiagnostic(.outOfRange, in: "optimizer: {kind: adam, lr: 1️⃣-0.1}\n", messageContains: "greater than 0")
    }

    func testE0123BetaMustBeBelowOne() {
        expectDiagnostic(.outOfRange, in: "optimizer: {kind: adam, betas: [0.9, 1️⃣1.0]}\n", messageContains: "[0, 1)")
    }

    func testE0124UnknownLayerKind() {
        expectDiagnostic(
            .unknownLayerKind, in: "model:\n  layers:\n    - 1️⃣linaer: {out: 3}\n", suggestion: "did you mean 'linear'?")
    }

    func testE0125UnknownActivation() {
        expectDiagnostic(
            .unknownActivation, in: "model:\n  layers:\n    - linear: {out: 3, activation: 1️⃣rleu}\n",
            suggestion: "did you mean 'relu'?")
    }

    func testE0126UnknownLoss() {
        expectDiagnostic(.unknownLoss, in: "loss: 1️⃣crossentropy\n", suggestion: "did you mean 'cross_entropy'?")
    }

    func testE0127UnknownOptimizer() {
        expectDiagnostic(.unknownOptimizer, in: "optimizer: {kind: 1️⃣adamx}\n", suggestion: "did you mean 'adam'?")
    }

    func testE0128UnknownInitialization() {
        expectDiagnostic(
            .unknownChoice, in: "model:\n  layers:\n    - linear: {out: 3, init: 1️⃣xavier}\n",
            suggestion: "did you mean 'xavier_uniform'?")
    }

    func testE0129LayerWithParametersBesideItsKind() {
        expectDiagnostic(
            .malformedKindEntry, in: "model:\n  layers:\n    - 1️⃣linear:\n      out: 3\n",
            suggestion: "put the parameters inside the kind: 'linear: {out: ...}'")
    }

    func testE0130EmptyLayerList() {
        expectDiagnostic(.emptyLayers, in: "model:\n  1️⃣layers: []\n")
    }

    func testE0131DuplicateLayerNameWithNoteToFirst() {
        let marked = "model:\n  layers:\n    - linear: {out: 3, name: 2️⃣fc2}\n    - 1️⃣linear: {out: 3}\n"
        let diagnostic = expectDiagnostic(.duplicateLayerName, in: marked, messageContains: "default name 'fc2'")
        XCTAssertEqual(diagnostic?.notes.first?.location, MarkedFixture(marked).markers["2️⃣"])
    }

    func testE0132NesterovWithoutMomentum() {
        expectDiagnostic(.nesterovConditions, in: "optimizer: {kind: sgd, lr: 0.1, nesterov: 1️⃣true}\n")
    }

    func testE0132NesterovWithDampening() {
        let diagnostic = expectDiagnostic(
            .nesterovConditions,
            in: "optimizer: {kind: sgd, lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: 1️⃣true}\n")
        XCTAssertEqual(diagnostic?.notes.map(\.message), ["dampening is 0.1"])
    }

    func testE0133OptionOfTheOtherOptimizer() {
        expectDiagnostic(.optionOfOtherOptimizer, in: "optimizer: {kind: adam, 1️⃣momentum: 0.9}\n", messageContains: "sgd")
    }

    func testE0134InvalidLayerName() {
        expectDiagnostic(.invalidName, in: "model:\n  layers:\n    - relu: {name: 1️⃣\"my layer\"}\n")
    }

    func testE0134InvalidSpecName() {
        expectDiagnostic(.invalidName, in: "name: 1️⃣../etc\n")
    }

    /// 10,000 layers decode; the 10,001st is refused where it stands, and 16,000 (an 80 KB spec) are
    /// refused within seconds.
    func testE0135TooManyLayers() {
        let atLimit = "model:\n  layers:\n" + String(repeating: "    - relu\n", count: 10_000)
        XCTAssertFalse(parse(atLimit).diagnostics.contains { $0.code == "E0135" })
        expectDiagnostic(
            .tooManyLayers, in: "model:\n  layers:\n" + String(repeating: "    - relu\n", count: 10_000) + "    - 1️⃣relu\n",
            messageContains: "10001 layers")
        let start = Date()
        let result = parse("model:\n  layers:\n" + String(repeating: "    - relu\n", count: 16_000))
        XCTAssertTrue(result.diagnostics.contains { $0.code == "E0135" })
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
    }

    func testW0100DampeningWithoutMomentum() {
        let fixture = MarkedFixture(
            minimalSpec.replacingOccurrences(of: "{kind: sgd, lr: 0.1}", with: "{kind: sgd, lr: 0.1, dampening: 1️⃣0.5}"))
        let result = parse(fixture.text)
        XCTAssertNotNil(result.spec, "a warning does not stop decoding")
        XCTAssertEqual(result.diagnostics.map(\.code), ["W0100"])
        XCTAssertEqual(result.diagnostics.first?.location, fixture.markers["1️⃣"])
        XCTAssertEqual(result.diagnostics.first?.severity, .warning)
    }

    func testW0101ActivationBeforeCrossEntropy() {
        let fixture = MarkedFixture(
            minimalSpec.replacingOccurrences(of: "{out: 2}", with: "{out: 2, activation: 1️⃣relu}"))
        let result = parse(fixture.text)
        XCTAssertNotNil(result.spec)
        XCTAssertEqual(result.diagnostics.map(\.code), ["W0101"])
        XCTAssertEqual(result.diagnostics.first?.location, fixture.markers["1️⃣"])
    }

    func testNoActivationWarningForMSE() {
        let text = minimalSpec.replacingOccurrences(of: "{out: 2}", with: "{out: 2, activation: sigmoid}")
            .replacingOccurrences(of: "loss: cross_entropy", with: "loss: mse")
        XCTAssertEqual(parse(text).diagnostics, [])
    }

    func testDiagnosticsComeInFileOrder() {
        let text = "training: {batch_size: 0, epochs: 1}\noptimizer: {kind: sgd, lr: -1}\nmodel: {layers: []}\nname: x\n"
        let lines = parse(text).diagnostics.compactMap { $0.location?.line }
        XCTAssertEqual(lines, lines.sorted())
        XCTAssertGreaterThan(Set(lines).count, 2)
    }

    func testAllProblemsAreReportedInOnePass() {
        let text = "name: tiny\ntraining: {batch_size: 0, epochs: x, shufle: true}\noptimizer: {kind: sgdd}\n"
        let codes = Set(parse(text).diagnostics.map(\.code))
        XCTAssertTrue(codes.isSuperset(of: ["E0123", "E0122", "E0120", "E0127", "E0121"]), "\(codes)")
    }
}
