import Foundation
import KernelInterface
import Planner
import XCTest

@testable import Runtime
@testable import Figures
@testable import Files
@testable import DataSources
@testable import Execution

/// The gather's prefetch of the next batch and the dataset's huge-page advice are hints: they must
/// change no result.
final class MemoryHintsTests: XCTestCase {
    func testHugePageSpanIsTheWholePagesInsideTheRange() {
        let page: UInt = 2 << 20
        XCTAssertEqual(hugePageSpan(start: 0, bytes: 3 * Int(page)), 0..<(3 * page))
        XCTAssertEqual(hugePageSpan(start: 100, bytes: 3 * Int(page)), page..<(3 * page))
        XCTAssertEqual(hugePageSpan(start: page - 1, bytes: 2 * Int(page) + 1), page..<(3 * page))
        XCTAssertEqual(hugePageSpan(start: page + 4096, bytes: 47_040_000), (2 * page)..<((page + 4096 + 47_040_000) / page * page))
    }

    func testHugePageSpanIsNilWhenNoWholePageFits() {
        let page: UInt = 2 << 20
        XCTAssertNil(hugePageSpan(start: 0, bytes: Int(page) - 1))
        XCTAssertNil(hugePageSpan(start: 16, bytes: Int(page)))
        XCTAssertNil(hugePageSpan(start: page + 1, bytes: Int(page) + 100))
        XCTAssertNil(hugePageSpan(start: 0, bytes: 0))
        XCTAssertNil(hugePageSpan(start: 64, bytes: -5))
        // Ranges that would pass the end of the address space, whether or not rounding up does.
        XCTAssertNil(hugePageSpan(start: UInt.max - 10, bytes: 4 * Int(page)))
        XCTAssertNil(hugePageSpan(start: UInt.max - 10, bytes: 5))
        XCTAssertNil(hugePageSpan(start: UInt.max - page, bytes: Int(page)))
    }

    func testAdvisedMemoryKeepsWhatIsWrittenIntoIt() {
        let bytes = 5 * (2 << 20) + 777
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        defer { buffer.deallocate() }
        adviseHugePages(buffer, bytes: bytes)
        let values = buffer.bindMemory(to: UInt8.self, capacity: bytes)
        for i in 0..<bytes { values[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
        var mismatches = 0
        for i in 0..<bytes where values[i] != UInt8(truncatingIfNeeded: i &* 31 &+ 7) { mismatches += 1 }
        XCTAssertEqual(mismatches, 0)
    }

    /// Two executors from the same plan and seed train on the same batches, one told each next batch
    /// (so its gather prefetches it, as training does) and one not: the parameters stay bit-identical.
    func testPrefetchingTheNextBatchChangesNoResult() throws {
        let layers = "    - flatten\n    - linear: {out: 40, activation: relu}\n    - linear: {out: 5}"
        let checked = try TinyData.plan(TinyData.specText(layers: layers, batch: 16, epochs: 1, threads: 2, seed: 3), threads: 2).1
        let data = LabeledImages.synthetic(count: 90, imageShape: [TinyData.side, TinyData.side], classes: 5, seed: 9)
        // A shuffled order whose last batch is ragged (90 = 5 x 16 + 10).
        let order: [Int32] = (0..<90).map { Int32(($0 * 37 + 11) % 90) }

        func train(prefetching: Bool) throws -> [UInt32] {
            let pool = WorkerPool(threads: 2)
            let executor = try StepExecutor(plan: checked, kernels: kernels(for: checked.target.isa), pool: pool, dropoutSeed: 1)
            initializeParameters(checked, seed: 3, into: executor.parameters)
            data.images.withUnsafeBufferPointer { images in
                data.labels.withUnsafeBufferPointer { labels in
                    order.withUnsafeBufferPointer { order in
                        var start = 0
                        while start < order.count {
                            let rows = min(16, order.count - start)
                            let next = start + rows
                            let upcoming = prefetching
                                ? UnsafeBufferPointer(rebasing: order[next..<min(next + 16, order.count)])
                                : UnsafeBufferPointer(start: nil, count: 0)
                            let batch = StepExecutor.BatchSource(
                                images: images.baseAddress!, labels: labels.baseAddress!, features: TinyData.side * TinyData.side,
                                indices: order.baseAddress! + start, rows: rows, upcoming: upcoming)
                            _ = executor.forward(batch)
                            executor.backwardAndUpdate(rows: rows)
                            start = next
                        }
                    }
                }
            }
            return (0..<checked.parameterBlockFloats).map { executor.parameters[$0].bitPattern }
        }

        let told = try train(prefetching: true)
        let untold = try train(prefetching: false)
        XCTAssertEqual(told.count, untold.count)
        XCTAssertTrue(told == untold, "prefetching changed the trained parameters")
        XCTAssertTrue(told.contains { $0 != 0 }, "nothing was trained")
    }
}
