import Foundation
import KernelInterface
import Runtime
import Figures
import Files
import DataSources
import Execution
import XCTest

/// SGD and Adam(W) against torch.optim's single-tensor formulas, computed here in Double, and against
/// values computed with numpy in float32 from the same formulas (torch/optim/sgd.py `_single_tensor_sgd`,
/// torch/optim/adam.py `_single_tensor_adam`).
final class OptimizerKernelTests: XCTestCase {
    static let start: [Float] = [0.5, -1.0, 2.0]
    static let gradients: [[Float]] = [[0.1, -0.2, 0.3], [-0.05, 0.4, 0.1], [0.2, 0.0, -0.3]]

    func testSGDWithMomentumAndDampeningMatchesTorchFormulaForThreeSteps() {
        for set in runnableKernelSets() {
            let result = runSGD(set, momentum: 0.9, dampening: 0.1, nesterov: false, weightDecay: 0.01)
            let expected = referenceSGD(momentum: 0.9, dampening: 0.1, nesterov: false, weightDecay: 0.01)
            assertClose(result, expected, relative: 1e-6, "\(set.isa)")
            // numpy float32: p = [0.4608222246170044, -1.0089201927185059, 1.9180792570114136]
            assertClose(result, [0.4608222246170044, -1.0089201927185059, 1.9180792570114136], relative: 1e-6, "\(set.isa) numpy")
        }
    }

    func testSGDWithNesterovMatchesTorchFormulaForThreeSteps() {
        for set in runnableKernelSets() {
            let result = runSGD(set, momentum: 0.9, dampening: 0, nesterov: true, weightDecay: 0.01)
            assertClose(result, referenceSGD(momentum: 0.9, dampening: 0, nesterov: true, weightDecay: 0.01), relative: 1e-6, "\(set.isa)")
            // numpy float32: p = [0.4372273087501526, -1.0316462516784668, 1.911004662513733]
            assertClose(result, [0.4372273087501526, -1.0316462516784668, 1.911004662513733], relative: 1e-6, "\(set.isa) numpy")
        }
    }

    func testSGDWithoutMomentumIsPlainGradientDescent() {
        for set in runnableKernelSets() {
            let result = runSGD(set, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0)
            let expected = (0..<3).map { i in Double(Self.start[i]) - 0.1 * Self.gradients.reduce(0) { $0 + Double($1[i]) } }
            assertClose(result, expected, relative: 1e-6, "\(set.isa)")
        }
    }

    func testAdamMatchesTorchFormulaForThreeSteps() {
        for set in runnableKernelSets() {
            let result = runAdam(set, weightDecay: 0.1, decoupled: false)
            assertClose(result, referenceAdam(weightDecay: 0.1, decoupled: false), relative: 1e-6, "\(set.isa)")
            // numpy float32: p = [0.4752235412597656, -0.9895005226135254, 1.974244475364685]
            assertClose(result, [0.4752235412597656, -0.9895005226135254, 1.974244475364685], relative: 1e-6, "\(set.isa) numpy")
        }
    }

    func testAdamWMatchesTorchFormulaForThreeSteps() {
        for set in runnableKernelSets() {
            let result = runAdam(set, weightDecay: 0.1, decoupled: true)
            assertClose(result, referenceAdam(weightDecay: 0.1, decoupled: true), relative: 1e-6, "\(set.isa)")
            // numpy float32: p = [0.47927966713905334, -0.9935104250907898, 1.9748402833938599]
            assertClose(result, [0.47927966713905334, -0.9935104250907898, 1.9748402833938599], relative: 1e-6, "\(set.isa) numpy")
        }
    }

    func testOptimizersAreBitIdenticalForAnyNumberOfParts() {
        var random = TestRandom(seed: 41)
        let count = 1037
        let start = random.floats(count), gradients = (0..<3).map { _ in random.floats(count) }
        for set in runnableKernelSets() {
            func adam(_ parts: Int) -> [Float] {
                var p = start, m = [Float](repeating: 0, count: count), v = m
                for (t, g) in gradients.enumerated() {
                    forEachPart(parts) { part, parts in
                        set.adamStep(&p, g, &m, &v, count, 1e-3, 0.9, 0.999, 1e-8, 0.01, true, t + 1, part, parts)
                    }
                }
                return p
            }
            func sgd(_ parts: Int) -> [Float] {
                var p = start, buffer = [Float](repeating: .nan, count: count)
                for (t, g) in gradients.enumerated() {
                    forEachPart(parts) { part, parts in
                        set.sgdStep(&p, g, &buffer, count, 0.1, 0.9, 0, true, 1e-4, t == 0, part, parts)
                    }
                }
                return p
            }
            for parts in [2, 3, 5] {
                XCTAssertEqual(bitPatterns(adam(parts)), bitPatterns(adam(1)), "\(set.isa) adam parts \(parts)")
                XCTAssertEqual(bitPatterns(sgd(parts)), bitPatterns(sgd(1)), "\(set.isa) sgd parts \(parts)")
            }
        }
    }

    // MARK: runners and references

    private func runSGD(_ set: KernelSet, momentum: Double, dampening: Double, nesterov: Bool, weightDecay: Double) -> [Float] {
        var p = Self.start, buffer = [Float](repeating: .nan, count: 3)
        for (t, g) in Self.gradients.enumerated() {
            set.sgdStep(&p, g, &buffer, 3, 0.1, momentum, dampening, nesterov, weightDecay, t == 0, 0, 1)
        }
        return p
    }

    /// g = grad + wd p; buf = g (first step) or momentum buf + (1 - dampening) g; g = nesterov ? g +
    /// momentum buf : buf; p -= lr g.
    private func referenceSGD(momentum: Double, dampening: Double, nesterov: Bool, weightDecay: Double) -> [Double] {
        var p = Self.start.map(Double.init), buffer = [Double](repeating: 0, count: 3)
        for (t, gradient) in Self.gradients.enumerated() {
            for i in 0..<3 {
                var g = Double(gradient[i]) + weightDecay * p[i]
                buffer[i] = t == 0 ? g : momentum * buffer[i] + (1 - dampening) * g
                g = nesterov ? g + momentum * buffer[i] : buffer[i]
                p[i] -= 0.1 * g
            }
        }
        return p
    }

    private func runAdam(_ set: KernelSet, weightDecay: Double, decoupled: Bool) -> [Float] {
        var p = Self.start, m = [Float](repeating: 0, count: 3), v = m
        for (t, g) in Self.gradients.enumerated() {
            set.adamStep(&p, g, &m, &v, 3, 0.01, 0.9, 0.999, 1e-8, weightDecay, decoupled, t + 1, 0, 1)
        }
        return p
    }

    /// adam: g = grad + wd p | adamw: p *= 1 - lr wd; m += (1 - b1)(g - m); v = b2 v + (1 - b2) g^2;
    /// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    private func referenceAdam(weightDecay: Double, decoupled: Bool) -> [Double] {
        let (lr, b1, b2, eps) = (0.01, 0.9, 0.999, 1e-8)
        var p = Self.start.map(Double.init), m = [Double](repeating: 0, count: 3), v = m
        for (index, gradient) in Self.gradients.enumerated() {
            let t = Double(index + 1)
            for i in 0..<3 {
                var g = Double(gradient[i])
                if decoupled { p[i] *= 1 - lr * weightDecay } else { g += weightDecay * p[i] }
                m[i] += (1 - b1) * (g - m[i])
                v[i] = b2 * v[i] + (1 - b2) * g * g
                let denom = v[i].squareRoot() / (1 - Foundation.pow(b2, t)).squareRoot() + eps
                p[i] -= lr / (1 - Foundation.pow(b1, t)) * m[i] / denom
            }
        }
        return p
    }
}
