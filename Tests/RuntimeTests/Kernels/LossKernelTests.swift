import Foundation
import KernelInterface
import Runtime
import Figures
import Files
import DataSources
import Execution
import XCTest

/// Losses against their definitions, and the gradients of a whole two-layer network (forward kernels,
/// loss, backward kernels) against finite differences of a Double reference of the same network.
final class LossKernelTests: XCTestCase {
    func testSoftmaxCrossEntropyMatchesDefinition() {
        var random = TestRandom(seed: 21)
        for set in runnableKernelSets() {
            for (m, n) in [(1, 1), (1, 10), (5, 3), (64, 10)] {
                let logits = random.floats(m * n, -8, 8)
                let labels = (0..<m).map { _ in Int32(random.int(below: n)) }
                var dlogits = [Float](repeating: .nan, count: m * n), rowLoss = [Float](repeating: .nan, count: m)
                let loss = set.softmaxCrossEntropy(logits, labels, m, n, &dlogits, &rowLoss)
                var expectedLoss = 0.0, expectedGrad = [Double](repeating: 0, count: m * n)
                for i in 0..<m {
                    let row = (0..<n).map { Double(logits[i * n + $0]) }
                    let top = row.max()!
                    let logSum = Foundation.log(row.map { Foundation.exp($0 - top) }.reduce(0, +)) + top
                    expectedLoss += logSum - row[Int(labels[i])]
                    for j in 0..<n {
                        expectedGrad[i * n + j] = (Foundation.exp(row[j] - logSum) - (j == Int(labels[i]) ? 1 : 0)) / Double(m)
                    }
                }
                XCTAssertEqual(Double(loss), expectedLoss / Double(m), accuracy: 1e-5 * max(1, expectedLoss / Double(m)))
                assertClose(dlogits, expectedGrad, relative: 1e-5, absolute: 1e-7, "\(set.isa) \(m)x\(n)")
            }
        }
    }

    func testSoftmaxCrossEntropyIsStableForHugeLogits() {
        for set in runnableKernelSets() {
            let logits: [Float] = [1e30, -1e30, 0, 88, 89, 90]
            var dlogits = [Float](repeating: .nan, count: 6), rowLoss = [Float](repeating: .nan, count: 2)
            let loss = set.softmaxCrossEntropy(logits, [0, 2], 2, 3, &dlogits, &rowLoss)
            XCTAssertTrue(loss.isFinite)
            XCTAssertTrue(dlogits.allSatisfy(\.isFinite))
            // Row 0 is certain and right (loss 0); row 1 is log(e^-2 + e^-1 + 1) = 0.40760596.
            XCTAssertEqual(loss, 0.40760596 / 2, accuracy: 1e-6)
        }
    }

    func testSoftmaxCrossEntropyReportsAnInvalidLabelAsNaN() {
        for set in runnableKernelSets() {
            var dlogits = [Float](repeating: 0, count: 2), rowLoss = [Float](repeating: 0, count: 1)
            XCTAssertTrue(set.softmaxCrossEntropy([0, 1], [2], 1, 2, &dlogits, &rowLoss).isNaN)
        }
    }

    func testMeanSquaredErrorMatchesPyTorchMeanReduction() {
        for set in runnableKernelSets() {
            // torch.nn.MSELoss()(out, one_hot(labels)) for out = [[0.5, 0.2], [0.1, 0.9], [1.0, -1.0]],
            // labels = [0, 1, 1]: squared errors 0.25, 0.04, 0.01, 0.01, 1.0, 4.0 -> mean 0.885.
            let output: [Float] = [0.5, 0.2, 0.1, 0.9, 1.0, -1.0]
            var doutput = [Float](repeating: .nan, count: 6)
            let loss = set.meanSquaredError(output, [0, 1, 1], 3, 2, &doutput)
            XCTAssertEqual(loss, 0.885, accuracy: 1e-6)
            let expected: [Double] = [-0.5, 0.2, 0.1, -0.1, 1.0, -2.0].map { 2 * $0 / 6 }
            assertClose(doutput, expected, relative: 1e-6, "\(set.isa)")
        }
    }

    func testNetworkGradientsMatchFiniteDifferences() {
        for set in runnableKernelSets() {
            for activation in ActivationCode.allCases {
                for loss in [NetworkLoss.crossEntropy, .meanSquaredError] {
                    checkNetworkGradients(set, activation, loss)
                }
            }
        }
    }

    enum NetworkLoss { case crossEntropy, meanSquaredError }

    /// x[m, k0] -> linear(k0 -> h) + activation -> linear(h -> c) -> loss.
    private func checkNetworkGradients(_ set: KernelSet, _ activation: ActivationCode, _ loss: NetworkLoss) {
        let (m, k0, h, c) = (5, 7, 19, 4)
        var random = TestRandom(seed: 31 &+ UInt64(activation.rawValue))
        let x = random.floats(m * k0), w1 = random.floats(k0 * h, -0.7, 0.7), b1 = random.floats(h)
        let w2 = random.floats(h * c, -0.7, 0.7), b2 = random.floats(c)
        let labels = (0..<m).map { _ in Int32(random.int(below: c)) }
        let slope: Float = 0.1

        // The kernels: forward, loss, backward.
        func run<T>(_ body: (UnsafeMutablePointer<Float>) -> T, tile: MatmulTile, m: Int, n: Int, k: Int) -> T {
            var workspace = [Float](repeating: .nan, count: workspaceFloats(tile, m, n, k))
            return workspace.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
        }
        let tile1 = MatmulTile.choose(m: m, n: h, k: k0, isa: set.isa)
        let tile2 = MatmulTile.choose(m: m, n: c, k: h, isa: set.isa)
        var hidden = [Float](repeating: .nan, count: m * h), preact = hidden
        var logits = [Float](repeating: .nan, count: m * c)
        // Weights are [out, in] here (PyTorch's layout); the kernels take them in panels.
        let w1Panels = weightPanels(w1, out: h, in: k0), w2Panels = weightPanels(w2, out: c, in: h)
        run({ set.linearForward(x, w1Panels, b1, &hidden, &preact, m, h, k0, activation, slope, tile1, $0, 0, 1, nil) }, tile: tile1, m: m, n: h, k: k0)
        run({ set.linearForward(hidden, w2Panels, b2, &logits, nil, m, c, h, .identity, 0, tile2, $0, 0, 1, nil) }, tile: tile2, m: m, n: c, k: h)
        var dlogits = [Float](repeating: .nan, count: m * c), rowLoss = [Float](repeating: .nan, count: m)
        switch loss {
        case .crossEntropy: _ = set.softmaxCrossEntropy(logits, labels, m, c, &dlogits, &rowLoss)
        case .meanSquaredError: _ = set.meanSquaredError(logits, labels, m, c, &dlogits)
        }
        var dw2 = [Float](repeating: .nan, count: WeightPanels.storedFloats(outFeatures: c, inFeatures: h))
        var db2 = [Float](repeating: .nan, count: c)
        let tileW2 = MatmulTile.choose(m: h, n: c, k: m, isa: set.isa)
        run({ set.linearBackwardWeights(hidden, dlogits, &dw2, &db2, m, c, h, tileW2, $0, 0, 1, nil) }, tile: tileW2, m: h, n: c, k: m)
        var dhidden = [Float](repeating: .nan, count: m * h)
        let tileIn = MatmulTile.choose(m: m, n: h, k: c, isa: set.isa)
        run({ set.linearBackwardInput(dlogits, w2Panels, &dhidden, m, c, h, activation, slope, hidden, preact, tileIn, $0, 0, 1) }, tile: tileIn, m: m, n: h, k: c)
        var dw1 = [Float](repeating: .nan, count: WeightPanels.storedFloats(outFeatures: h, inFeatures: k0))
        var db1 = [Float](repeating: .nan, count: h)
        let tileW1 = MatmulTile.choose(m: k0, n: h, k: m, isa: set.isa)
        run({ set.linearBackwardWeights(x, dhidden, &dw1, &db1, m, h, k0, tileW1, $0, 0, 1, nil) }, tile: tileW1, m: k0, n: h, k: m)

        // The Double reference of the same network.
        func referenceLoss(_ w1: [Double], _ b1: [Double], _ w2: [Double], _ b2: [Double]) -> Double {
            var total = 0.0
            for i in 0..<m {
                var hiddenRow = [Double](repeating: 0, count: h)
                for j in 0..<h {
                    var z = b1[j]
                    for p in 0..<k0 { z += Double(x[i * k0 + p]) * w1[j * k0 + p] }
                    hiddenRow[j] = referenceActivation(z, activation, Double(slope))
                }
                var out = [Double](repeating: 0, count: c)
                for j in 0..<c {
                    out[j] = b2[j]
                    for p in 0..<h { out[j] += hiddenRow[p] * w2[j * h + p] }
                }
                let label = Int(labels[i])
                switch loss {
                case .crossEntropy:
                    let top = out.max()!
                    total += Foundation.log(out.map { Foundation.exp($0 - top) }.reduce(0, +)) + top - out[label]
                case .meanSquaredError:
                    for j in 0..<c { total += (out[j] - (j == label ? 1 : 0)) * (out[j] - (j == label ? 1 : 0)) / Double(c) }
                }
            }
            return total / Double(m)
        }
        var parameters = [w1, b1, w2, b2].map { $0.map(Double.init) }
        let gradients = [weightFromPanels(dw1, out: h, in: k0), db1, weightFromPanels(dw2, out: c, in: h), db2]
        let names = ["w1", "b1", "w2", "b2"]
        let step = 1e-5
        for (tensor, gradient) in gradients.enumerated() {
            for index in 0..<gradient.count {
                let saved = parameters[tensor][index]
                parameters[tensor][index] = saved + step
                let up = referenceLoss(parameters[0], parameters[1], parameters[2], parameters[3])
                parameters[tensor][index] = saved - step
                let down = referenceLoss(parameters[0], parameters[1], parameters[2], parameters[3])
                parameters[tensor][index] = saved
                let numeric = (up - down) / (2 * step)
                let tolerance = 2e-4 * max(1, abs(numeric))
                if abs(Double(gradient[index]) - numeric) > tolerance {
                    XCTFail("\(set.isa) \(activation) \(loss): d\(names[tensor])[\(index)] = \(gradient[index]), finite difference \(numeric)")
                    return
                }
            }
        }
    }
}

extension LossKernelTests {
    /// mse, l1 and huber against their definitions in Double, on every kernel set.
    func testRegressionLossMatchesDefinition() {
        var random = TestRandom(seed: 33)
        for set in runnableKernelSets() {
            for (m, n) in [(1, 1), (7, 1), (16, 3)] {
                var output = random.floats(m * n, -3, 3)
                let targets = random.floats(m * n, -3, 3)
                output[0] = targets[0]  // a zero difference: l1's gradient is 0 there, as in PyTorch
                for (code, name) in [(0, "mse"), (1, "l1"), (2, "huber")] {
                    var gradient = [Float](repeating: .nan, count: m * n)
                    let loss = set.regressionLoss(code, 1, output, targets, m, n, &gradient)
                    var expected = 0.0
                    var expectedGradient = [Double](repeating: 0, count: m * n)
                    let count = Double(m * n)
                    for i in 0..<(m * n) {
                        let d = Double(output[i]) - Double(targets[i])
                        let sign: Double = d > 0 ? 1 : (d < 0 ? -1 : 0)
                        switch code {
                        case 0: expected += d * d; expectedGradient[i] = 2 * d / count
                        case 1: expected += abs(d); expectedGradient[i] = sign / count
                        default:
                            expected += abs(d) <= 1 ? 0.5 * d * d : abs(d) - 0.5
                            expectedGradient[i] = (abs(d) <= 1 ? d : sign) / count
                        }
                    }
                    XCTAssertEqual(Double(loss), expected / count, accuracy: 1e-5 * max(1, expected / count), "\(set.isa) \(name)")
                    assertClose(gradient, expectedGradient, relative: 1e-5, absolute: 1e-7, "\(set.isa) \(name) \(m)x\(n)")
                }
            }
        }
    }

    func testTargetRowsAreGatheredByIndex() {
        let targets: [Float] = [0, 1, 10, 11, 20, 21]
        let indices: [Int32] = [2, 0]
        for set in runnableKernelSets() {
            var out = [Float](repeating: .nan, count: 4)
            for part in 0..<2 { set.gatherTargetRows(targets, 2, indices, 2, &out, part, 2) }
            XCTAssertEqual(out, [20, 21, 0, 1], "\(set.isa)")
        }
    }
}
