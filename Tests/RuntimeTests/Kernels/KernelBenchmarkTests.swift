import Foundation
import KernelInterface
import Runtime
import Figures
import Files
import DataSources
import Execution
import XCTest

/// Prints the speed of the matrix products at the reference MLP's shapes and the pool's hand-off cost
/// (meaningful in release builds: `swift test -c release --filter KernelBenchmarkTests`). Speed
/// depends on the machine's load, so only the results' agreement across thread counts is asserted.
final class KernelBenchmarkTests: XCTestCase {
    #if DEBUG
    static let repetitions = 2
    static let batches = 1
    #else
    static let repetitions = 20
    static let batches = 30
    #endif

    /// Seconds per call of the fastest batch: the machines running this are shared, and the fastest
    /// batch is the one least disturbed by other processes.
    static func bestSeconds(_ body: () -> Void) -> Double {
        var best = Double.infinity
        for _ in 0..<batches {
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<repetitions { body() }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 / Double(repetitions))
        }
        return best
    }

    enum Product: String { case forward, backwardInput, backwardWeights }

    /// (kind, m, n, k) in the layer's terms, the weight [n, k] in panels: forward x[m,k] w^T; backward
    /// input dy[m,n] w; backward weights dy[m,n]^T x[m,k].
    static let cases: [(Product, Int, Int, Int)] = [
        (.forward, 64, 128, 784), (.forward, 64, 64, 128), (.forward, 64, 10, 64), (.forward, 1000, 128, 784),
        (.backwardInput, 64, 10, 64), (.backwardInput, 64, 64, 128),
        (.backwardWeights, 64, 128, 784), (.backwardWeights, 64, 64, 128), (.backwardWeights, 64, 10, 64),
    ]

    func testMatrixProductSpeedAtTrainingShapes() {
        let pool = WorkerPool(threads: 2)
        var random = TestRandom(seed: 61)
        for set in runnableKernelSets() where set.isa != .portable || Self.repetitions < 10 {
            for (kind, m, n, k) in Self.cases {
                let (pm, pn, pk) = kind == .forward ? (m, n, k) : kind == .backwardInput ? (m, k, n) : (k, n, m)
                let tile = MatmulTile.choose(m: pm, n: pn, k: pk, isa: set.isa)
                let perPart = workspaceFloats(tile, pm, pn, pk)
                let a = random.floats(m * max(n, k)), bias = random.floats(n)
                let b = random.floats(max(m * n, WeightPanels.storedFloats(outFeatures: n, inFeatures: k)))
                let workspace = UnsafeMutablePointer<Float>.allocate(capacity: perPart * 2)
                let out = UnsafeMutablePointer<Float>.allocate(
                    capacity: max(m * n, m * k, WeightPanels.storedFloats(outFeatures: n, inFeatures: k)))
                let extra = UnsafeMutablePointer<Float>.allocate(capacity: max(n, m * k))
                defer { workspace.deallocate(); out.deallocate(); extra.deallocate() }
                let outCount = kind == .forward ? m * n : kind == .backwardInput ? m * k : WeightPanels.storedFloats(outFeatures: n, inFeatures: k)
                extra.initialize(repeating: 0.5, count: max(n, m * k))
                var results: [[Float]] = []
                var line = "\(set.isa) \(kind.rawValue) m=\(m) n=\(n) k=\(k):"
                for threads in [1, 2] {
                    let call = { (part: Int) in
                        let ws = workspace + part * perPart
                        switch kind {
                        case .forward:
                            set.linearForward(a, b, bias, out, nil, m, n, k, .relu, 0, tile, ws, part, threads, nil)
                        case .backwardInput:
                            set.linearBackwardInput(a, b, out, m, n, k, .relu, 0, extra, nil, tile, ws, part, threads)
                        case .backwardWeights:
                            set.linearBackwardWeights(a, b, out, extra, m, n, k, tile, ws, part, threads, nil)
                        }
                    }
                    pool.run(parts: threads, call)
                    let seconds = Self.bestSeconds { pool.run(parts: threads, call) }
                    let gflops = 2 * Double(m * n * k) / seconds / 1e9
                    line += String(format: "  %d thread%@ %.1f us %.0f GFLOP/s", threads, threads == 1 ? "" : "s", seconds * 1e6, gflops)
                    results.append(Array(UnsafeBufferPointer(start: out, count: outCount)))
                }
                print(line)
                XCTAssertEqual(bitPatterns(results[0]), bitPatterns(results[1]), line)
            }
        }
    }

    func testPoolHandOffCost() {
        let pool = WorkerPool(threads: 2)
        let sink = UnsafeMutablePointer<Int>.allocate(capacity: 2)
        defer { sink.deallocate() }
        sink.initialize(repeating: 0, count: 2)
        let micros = Self.bestSeconds { pool.run(parts: 2) { sink[$0] += 1 } } * 1e6
        print(String(format: "worker pool: %.2f us per two-part run", micros))
        let calls = Self.repetitions * Self.batches
        XCTAssertEqual(sink[0], calls)
        XCTAssertEqual(sink[1], calls)
    }
}
