import XCTest

@testable import SpecParser

/// The kernels compute in Float32: a number the spec reads as a Double must still mean something once
/// rounded to Float32, and so must the coefficients derived from it. Each refusal is an E0123 at the
/// offending value that says which Float32 limit it crosses.
final class Float32RangeTests: XCTestCase {
    /// `minimalSpec` (sgd, lr 0.1) with one line replaced.
    private func spec(replacing old: String, with new: String) -> String {
        let text = minimalSpec.replacingOccurrences(of: old, with: new)
        precondition(text != minimalSpec, "the fixture does not contain '\(old)'")
        return text
    }

    private func withData(_ data: String) -> String { spec(replacing: "data: {dir: data}", with: data) }
    private func withOptimizer(_ optimizer: String) -> String {
        spec(replacing: "optimizer: {kind: sgd, lr: 0.1}", with: optimizer)
    }

    // MARK: finite in Float32

    func testLearningRateBeyondTheLargestFloat32IsRefused() {
        expectDiagnostic(
            .outOfRange, in: withOptimizer("optimizer: {kind: sgd, lr: 1️⃣1e300}"),
            messageContains: "'optimizer.lr' 1e300 is beyond the largest float32 (3.4e38)")
    }

    /// Past the largest Double too: still a number, refused for the same reason as 1e39.
    func testLearningRateBeyondTheLargestDoubleIsRefusedAsTooLarge() {
        expectDiagnostic(
            .outOfRange, in: withOptimizer("optimizer: {kind: sgd, lr: 1️⃣1e400}"),
            messageContains: "'optimizer.lr' 1e400 is beyond the largest float32 (3.4e38)")
        expectDiagnostic(
            .outOfRange, in: withData("data: {dir: data, normalize: {mean: 1️⃣-1e400, std: 1}}"),
            messageContains: "'data.normalize.mean' -1e400 is beyond the largest float32")
        expectDiagnostic(
            .outOfRange, in: withOptimizer("optimizer: {kind: sgd, lr: 1️⃣-1e400}"), messageContains: "found -1e400")
    }

    func testLearningRateJustUnderTheLargestFloat32IsAcceptedForSGD() {
        XCTAssertNotNil(decodeClean(withOptimizer("optimizer: {kind: sgd, lr: 3.4e38}")))
    }

    func testNormalizeMeanBeyondTheLargestFloat32IsRefused() {
        expectDiagnostic(
            .outOfRange, in: withData("data: {dir: data, normalize: {mean: 1️⃣1e300, std: 1}}"),
            messageContains: "'data.normalize.mean' 1e300 is beyond the largest float32")
    }

    func testMomentumBeyondTheLargestFloat32IsRefused() {
        expectDiagnostic(
            .outOfRange, in: withOptimizer("optimizer: {kind: sgd, lr: 0.1, momentum: 1️⃣1e39}"),
            messageContains: "'optimizer.momentum' 1e39 is beyond the largest float32")
    }

    func testWeightDecayBeyondTheLargestFloat32IsRefused() {
        expectDiagnostic(
            .outOfRange, in: withOptimizer("optimizer: {kind: sgd, lr: 0.1, weight_decay: 1️⃣4e38}"),
            messageContains: "'optimizer.weight_decay' 4e38 is beyond the largest float32")
    }

    func testLeakyReluSlopeBeyondTheLargestFloat32IsRefused() {
        let text = spec(
            replacing: "    - linear: {out: 2}", with: "    - leaky_relu: {negative_slope: 1️⃣-1e39}\n    - linear: {out: 2}")
        expectDiagnostic(.outOfRange, in: text, messageContains: "negative_slope' -1e39 is beyond the largest float32")
    }

    func testTinyMeanIsAcceptedBecauseAShiftThatRoundsToZeroIsHarmless() {
        XCTAssertNotNil(decodeClean(withData("data: {dir: data, normalize: {mean: 1e-45, std: 1}}")))
    }

    // MARK: normal in Float32

    func testStandardDeviationBelowTheSmallestNormalFloat32IsRefused() {
        expectDiagnostic(
            .outOfRange, in: withData("data: {dir: data, normalize: {mean: 0.5, std: 1️⃣1e-45}}"),
            messageContains: "'data.normalize.std' 1e-45 is below the smallest normal float32 (1.2e-38)")
    }

    func testLearningRateThatRoundsToZeroInFloat32IsRefused() {
        expectDiagnostic(
            .outOfRange, in: withOptimizer("optimizer: {kind: sgd, lr: 1️⃣1e-50}"),
            messageContains: "below the smallest normal float32 (1.2e-38) and rounds to 0 in float32")
    }

    func testSubnormalLearningRateIsRefused() {
        expectDiagnostic(
            .outOfRange, in: withOptimizer("optimizer: {kind: sgd, lr: 1️⃣1e-40}"),
            messageContains: "'optimizer.lr' 1e-40 is below the smallest normal float32 (1.2e-38) and is a subnormal")
    }

    func testSmallestNormalLearningRateIsAccepted() {
        XCTAssertNotNil(decodeClean(withOptimizer("optimizer: {kind: sgd, lr: 1.2e-38}")))
    }

    func testAdamEpsilonThatRoundsToZeroInFloat32IsRefused() {
        expectDiagnostic(
            .outOfRange, in: withOptimizer("optimizer: {kind: adam, eps: 1️⃣1e-50}"),
            messageContains: "'optimizer.eps' 1e-50 is below the smallest normal float32")
    }

    // MARK: below 1 in Float32

    func testDropoutProbabilityThatRoundsToOneInFloat32IsRefused() {
        // 1 - 1e-8 is below 1 as a Double, but the Float32 just below 1 is 1 - 6e-8.
        let text = spec(replacing: "    - linear: {out: 2}", with: "    - dropout: {p: 1️⃣0.99999999}\n    - linear: {out: 2}")
        expectDiagnostic(.outOfRange, in: text, messageContains: "'model.layers[0].dropout.p' 0.99999999 rounds to 1 in float32")
    }

    func testDropoutProbabilityJustBelowOneInFloat32IsAccepted() {
        let text = spec(replacing: "    - linear: {out: 2}", with: "    - dropout: {p: 0.9999999}\n    - linear: {out: 2}")
        XCTAssertNotNil(decodeClean(text))
    }

    // MARK: derived coefficients

    func testNormalizedPixelBeyondTheLargestFloat32IsRefusedAtStdWithANoteAtMean() {
        let marked = withData("data: {dir: data, normalize: {mean: 2️⃣1e30, std: 1️⃣1e-10}}")
        let diagnostic = expectDiagnostic(
            .outOfRange, in: marked, messageContains: "maps pixel 0 to -mean/std = -1e40, beyond the largest float32")
        XCTAssertEqual(diagnostic?.notes.first?.location, MarkedFixture(marked).markers["2️⃣"])
    }

    func testStandardDeviationThatFlattensEveryImageIsRefused() {
        // 1/(255 * 1e36) is about 3.9e-39: a subnormal pixel scale.
        expectDiagnostic(
            .outOfRange, in: withData("data: {dir: data, normalize: {mean: 0, std: 1️⃣1e36}}"),
            messageContains: "pixel scale 1/(255 std) = 3.9e-39, below the smallest normal float32")
    }

    func testLargeButUsableNormalizationIsAccepted() {
        XCTAssertNotNil(decodeClean(withData("data: {dir: data, normalize: {mean: 1e30, std: 1e30}}")))
    }

    func testAdamFirstStepSizeBeyondTheLargestFloat32IsRefusedAtLr() {
        let marked = withOptimizer("optimizer: {kind: adam, lr: 1️⃣1e37, betas: [2️⃣0.99, 0.999]}")
        let diagnostic = expectDiagnostic(
            .outOfRange, in: marked, messageContains: "first step size lr / (1 - beta1) = 1e37 / (1 - 0.99) = 1e39")
        XCTAssertEqual(diagnostic?.notes.first?.location, MarkedFixture(marked).markers["2️⃣"])
    }

    func testSGDWithTheSameLearningRateHasNoStepSizeToOverflow() {
        XCTAssertNotNil(decodeClean(withOptimizer("optimizer: {kind: sgd, lr: 1e37}")))
    }

    func testAdamWDecayFactorBeyondTheLargestFloat32IsRefusedAtWeightDecay() {
        expectDiagnostic(
            .outOfRange, in: withOptimizer("optimizer: {kind: adamw, lr: 1e20, weight_decay: 1️⃣1e20}"),
            messageContains: "adamw's decay factor 1 - lr * weight_decay = -1e40, beyond the largest float32")
    }

    func testAdamWithTheSameWeightDecayHasNoDecayFactor() {
        XCTAssertNotNil(decodeClean(withOptimizer("optimizer: {kind: adam, lr: 1e20, weight_decay: 1e20}")))
    }
}
