import Execution
import KernelInterface
import XCTest

/// Batch norm's kernels against the plain twin (PyTorch's formulas, the running variance unbiased),
/// gradients against central differences, the same bits for any channel split and kernel set.
final class BatchNormKernelTests: XCTestCase {
    static let shapes: [(rows: Int, geometry: BatchNormGeometry)] = [
        (5, BatchNormGeometry(channels: 3, spatial: 1, eps: 1e-5, momentum: 0.1)),
        (4, BatchNormGeometry(channels: 5, spatial: 23, eps: 1e-3, momentum: 0.3)),
        (2, BatchNormGeometry(channels: 2, spatial: 49, eps: 1e-5, momentum: 0.1)),
    ]

    struct Result {
        var y: [Float], runningMean: [Float], runningVar: [Float], dx: [Float], dweight: [Float], dbias: [Float]
    }

    func run(_ k: KernelSet, rows: Int, _ g: BatchNormGeometry, x: [Float], weight: [Float], bias: [Float], dy: [Float], parts: Int) -> Result {
        var y = [Float](repeating: .nan, count: x.count), dx = y
        var runningMean = [Float](repeating: 0.5, count: g.channels), runningVar = [Float](repeating: 2, count: g.channels)
        var mean = [Float](repeating: .nan, count: g.channels), invStd = mean, dweight = mean, dbias = mean
        for part in 0..<parts {
            let share = partRange(count: g.channels, granule: 1, part: part, parts: parts)
            k.batchNormTraining(x, &y, weight, bias, &runningMean, &runningVar, &mean, &invStd, rows, g, share.lowerBound, share.upperBound)
        }
        for part in 0..<parts {
            let share = partRange(count: g.channels, granule: 1, part: part, parts: parts)
            k.batchNormBackward(dy, x, weight, mean, invStd, &dx, &dweight, &dbias, rows, g, share.lowerBound, share.upperBound)
        }
        return Result(y: y, runningMean: runningMean, runningVar: runningVar, dx: dx, dweight: dweight, dbias: dbias)
    }

    func testTrainingMatchesReferenceAndFiniteDifferences() {
        var random = TestRandom(seed: 21)
        for (rows, g) in Self.shapes {
            let count = rows * g.channels * g.spatial
            let x = random.floats(count, -2, 3), weight = random.floats(g.channels, 0.5, 1.5), bias = random.floats(g.channels)
            let dy = random.floats(count)
            let expected = referenceBatchNorm(x.map(Double.init), weight: weight.map(Double.init), bias: bias.map(Double.init), rows: rows, g)
            let n = Double(rows * g.spatial), m = Double(g.momentum)
            let runningMean = expected.mean.map { (1 - m) * 0.5 + m * $0 }
            let runningVar = expected.variance.map { (1 - m) * 2 + m * $0 * n / (n - 1) }
            let loss = { (x: [Double], w: [Double], b: [Double]) in
                zip(referenceBatchNorm(x, weight: w, bias: b, rows: rows, g).y, dy).reduce(0) { $0 + $1.0 * Double($1.1) }
            }
            let xd = x.map(Double.init), wd = weight.map(Double.init), bd = bias.map(Double.init)
            let reference = run(runnableKernelSets()[0], rows: rows, g, x: x, weight: weight, bias: bias, dy: dy, parts: 1)
            for k in runnableKernelSets() {
                for parts in [1, 2, 3] {
                    let result = run(k, rows: rows, g, x: x, weight: weight, bias: bias, dy: dy, parts: parts)
                    let context = "\(g) \(k.isa) \(parts) parts"
                    assertClose(result.y, expected.y, relative: 1e-4, absolute: 1e-4, context)
                    assertClose(result.runningMean, runningMean, relative: 1e-5, absolute: 1e-6, "\(context) running mean")
                    assertClose(result.runningVar, runningVar, relative: 1e-5, absolute: 1e-6, "\(context) running var")
                    for field in [\Result.y, \.dx, \.dweight, \.dbias, \.runningVar] {
                        XCTAssertEqual(bitPatterns(result[keyPath: field]), bitPatterns(reference[keyPath: field]), context)
                    }
                }
            }
            let h = 1e-4
            for i in stride(from: 0, to: count, by: max(1, count / 17)) {
                var plus = xd, minus = xd
                plus[i] += h
                minus[i] -= h
                let numeric = (loss(plus, wd, bd) - loss(minus, wd, bd)) / (2 * h)
                XCTAssertEqual(Double(reference.dx[i]), numeric, accuracy: 2e-3 * max(1, abs(numeric)), "dx[\(i)] \(g)")
            }
            for c in 0..<g.channels {
                var plus = wd, minus = wd
                plus[c] += h
                minus[c] -= h
                XCTAssertEqual(Double(reference.dweight[c]), (loss(xd, plus, bd) - loss(xd, minus, bd)) / (2 * h), accuracy: 2e-3, "dweight[\(c)]")
                plus = bd
                minus = bd
                plus[c] += h
                minus[c] -= h
                XCTAssertEqual(Double(reference.dbias[c]), (loss(xd, wd, plus) - loss(xd, wd, minus)) / (2 * h), accuracy: 2e-3, "dbias[\(c)]")
            }
        }
    }

    func testEvaluationUsesRunningStatistics() {
        var random = TestRandom(seed: 4)
        let g = BatchNormGeometry(channels: 4, spatial: 17, eps: 1e-5, momentum: 0.1), rows = 3
        let x = random.floats(rows * 4 * 17), weight = random.floats(4), bias = random.floats(4)
        let mean = random.floats(4), variance = random.floats(4, 0.5, 2)
        for k in runnableKernelSets() {
            var y = [Float](repeating: .nan, count: x.count)
            k.batchNormEvaluation(x, &y, weight, bias, mean, variance, rows, g, 0, 4)
            var expected: [Double] = []
            for i in x.indices {
                let c = (i / 17) % 4
                expected.append((Double(x[i]) - Double(mean[c])) / (Double(variance[c]) + 1e-5).squareRoot() * Double(weight[c]) + Double(bias[c]))
            }
            assertClose(y, expected, relative: 1e-5, absolute: 1e-5, "\(k.isa)")
        }
    }
}
