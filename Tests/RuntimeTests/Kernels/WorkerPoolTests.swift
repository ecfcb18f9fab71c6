import Runtime
import Synchronization
import XCTest

final class WorkerPoolTests: XCTestCase {
    func testEveryPartRunsExactlyOnceOverManyCalls() {
        let pool = WorkerPool(threads: 3)
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: 64)
        defer { counts.deallocate() }
        var random = TestRandom(seed: 51)
        for iteration in 0..<3000 {
            let parts = 1 + random.int(below: 17)
            counts.initialize(repeating: 0, count: 64)
            pool.run(parts: parts) { part in counts[part] += 1 }
            for part in 0..<64 where counts[part] != (part < parts ? 1 : 0) {
                XCTFail("iteration \(iteration), \(parts) parts: part \(part) ran \(counts[part]) times")
                return
            }
        }
    }

    func testCallerRunsPartZero() {
        let pool = WorkerPool(threads: 2)
        let caller = pthread_self()
        var partZeroOnCaller = false
        pool.run(parts: 2) { part in
            if part == 0 { partZeroOnCaller = pthread_equal(pthread_self(), caller) != 0 }
        }
        XCTAssertTrue(partZeroOnCaller)
    }

    func testWorkersShareTheWork() {
        let pool = WorkerPool(threads: 2, spinMicroseconds: 1000)
        let threadsSeen = Atomic<Int>(0)
        let caller = pthread_self()
        for _ in 0..<200 {
            pool.run(parts: 8) { _ in
                if pthread_equal(pthread_self(), caller) == 0 { threadsSeen.wrappingAdd(1, ordering: .relaxed) }
                usleep(50)
            }
        }
        XCTAssertGreaterThan(threadsSeen.load(ordering: .relaxed), 0, "a worker thread ran some parts")
    }

    func testWorkersWakeUpAfterSleeping() {
        let pool = WorkerPool(threads: 3, spinMicroseconds: 0)
        for _ in 0..<50 {
            usleep(200)
            let sum = Atomic<Int>(0)
            pool.run(parts: 9) { part in sum.wrappingAdd(part, ordering: .relaxed) }
            XCTAssertEqual(sum.load(ordering: .relaxed), 36)
        }
    }

    func testSingleThreadPoolRunsAllPartsOnTheCaller() {
        let pool = WorkerPool(threads: 1)
        var order: [Int] = []
        pool.run(parts: 4) { order.append($0) }
        XCTAssertEqual(order, [0, 1, 2, 3])
        pool.run(parts: 0) { _ in XCTFail("no parts, no calls") }
    }

    func testPoolsShutDownCleanly() {
        for _ in 0..<100 {
            let pool = WorkerPool(threads: 3)
            let sum = Atomic<Int>(0)
            pool.run(parts: 5) { sum.wrappingAdd($0, ordering: .relaxed) }
            XCTAssertEqual(sum.load(ordering: .relaxed), 10)
        }
    }
}
