import Foundation
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

final class ShufflerTests: XCTestCase {
    private func order(seed: UInt64, epoch: Int, count: Int) -> [Int32] {
        var order = [Int32](repeating: -1, count: count)
        order.withUnsafeMutableBufferPointer { Shuffler(seed: seed).permutation(epoch: epoch, count: count, into: $0.baseAddress!) }
        return order
    }

    func testEveryEpochIsAPermutation() {
        for epoch in 0..<5 {
            let permutation = order(seed: 42, epoch: epoch, count: 1000)
            XCTAssertEqual(permutation.sorted(), (0..<1000).map { Int32($0) }, "epoch \(epoch)")
        }
    }

    func testSameSeedAndEpochGiveTheSameOrder() {
        XCTAssertEqual(order(seed: 7, epoch: 3, count: 500), order(seed: 7, epoch: 3, count: 500))
    }

    func testOrderDependsOnTheEpochAndTheSeed() {
        let base = order(seed: 7, epoch: 0, count: 500)
        XCTAssertNotEqual(base, order(seed: 7, epoch: 1, count: 500))
        XCTAssertNotEqual(base, order(seed: 8, epoch: 0, count: 500))
        XCTAssertNotEqual(base, (0..<500).map { Int32($0) })
    }

    func testEpochOrderDoesNotDependOnEarlierEpochs() {
        // Computing epoch 5 directly gives what a run that went through epochs 0...4 first gets.
        let shuffler = Shuffler(seed: 11)
        var buffer = [Int32](repeating: 0, count: 64)
        for epoch in 0..<5 { buffer.withUnsafeMutableBufferPointer { shuffler.permutation(epoch: epoch, count: 64, into: $0.baseAddress!) } }
        buffer.withUnsafeMutableBufferPointer { shuffler.permutation(epoch: 5, count: 64, into: $0.baseAddress!) }
        XCTAssertEqual(buffer, order(seed: 11, epoch: 5, count: 64))
    }

    func testTinyCounts() {
        XCTAssertEqual(order(seed: 1, epoch: 0, count: 0), [])
        XCTAssertEqual(order(seed: 1, epoch: 0, count: 1), [0])
        XCTAssertEqual(order(seed: 1, epoch: 0, count: 2).sorted(), [0, 1])
    }

    func testBoundedDrawsAreRoughlyUniform() {
        var generator = Shuffler(seed: 3).generator(epoch: 0)
        var counts = [Int](repeating: 0, count: 6)
        for _ in 0..<60_000 { counts[Int(generator.next(below: 6))] += 1 }
        // Each bucket expects 10000; 5 standard deviations is about 456.
        for count in counts { XCTAssertEqual(Double(count), 10_000, accuracy: 460) }
    }

    func testFirstPositionIsUniformAcrossSeeds() {
        var counts = [Int](repeating: 0, count: 4)
        for seed in 0..<8000 { counts[Int(order(seed: UInt64(seed), epoch: 0, count: 4)[0])] += 1 }
        // 2000 expected per value; 5 standard deviations is about 194.
        for count in counts { XCTAssertEqual(Double(count), 2000, accuracy: 200, "\(counts)") }
    }

    func testMatchesAnIndependentPythonImplementationOfTheDocumentedAlgorithm() throws {
        let script = """
        import sys
        M = (1 << 64) - 1
        def splitmix(state):
            while True:
                state = (state + 0x9E3779B97F4A7C15) & M
                z = state
                z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
                z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
                yield z ^ (z >> 31)
        def rotl(x, k):
            return ((x << k) | (x >> (64 - k))) & M
        def xoshiro(seed_words):
            s = list(seed_words)
            while True:
                result = (rotl((s[1] * 5) & M, 7) * 9) & M
                t = (s[1] << 17) & M
                s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45)
                yield result
        def below(gen, n):
            m = next(gen) * n
            if (m & M) < n:
                threshold = ((1 << 64) - n) % n
                while (m & M) < threshold:
                    m = next(gen) * n
            return m >> 64
        seed, epoch, count = map(int, sys.argv[1:4])
        seeder = splitmix(seed ^ ((epoch * 0xD1B54A32D192ED03) & M))
        gen = xoshiro([next(seeder) for _ in range(4)])
        order = list(range(count))
        for i in range(count - 1, 0, -1):
            j = below(gen, i + 1)
            order[i], order[j] = order[j], order[i]
        print(' '.join(map(str, order)))
        """
        for (seed, epoch, count) in [(UInt64(0), 0, 10), (42, 3, 257), (UInt64.max, 1000, 100)] {
            let output = try DataFixtures.runPython(script, arguments: [String(seed), String(epoch), String(count)])
            let python = output.split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }
            XCTAssertEqual(order(seed: seed, epoch: epoch, count: count), python, "seed \(seed) epoch \(epoch)")
        }
    }
}
