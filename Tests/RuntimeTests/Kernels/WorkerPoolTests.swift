import Runtime
import Figures
import Files
import DataSources
import Execution
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

/// A background job that calls a closure (the product's jobs are objects so handing one over allocates
/// nothing; tests need no such care).
final class ClosureJob: PoolJob {
    let body: (Int) -> Void
    init(_ body: @escaping (Int) -> Void) { self.body = body }
    func run(part: Int) { body(part) }
}

final class WorkerPoolBackgroundTests: XCTestCase {
    func testEveryBackgroundPartRunsExactlyOnceBetweenRuns() {
        let pool = WorkerPool(threads: 2)
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: 16)
        defer { counts.deallocate() }
        var random = TestRandom(seed: 52)
        let background = ClosureJob { part in counts[part] += 1 }
        for iteration in 0..<2000 {
            let parts = 1 + random.int(below: 4)
            counts.initialize(repeating: 0, count: 16)
            pool.startBackground(parts: parts, background)
            // Some caller work while the worker runs the background parts (or not yet).
            if iteration % 2 == 0 { pool.run(parts: 3) { _ in } } else { pool.waitForBackground() }
            for part in 0..<16 where counts[part] != (part < parts ? 1 : 0) {
                XCTFail("iteration \(iteration), \(parts) parts: part \(part) ran \(counts[part]) times")
                return
            }
        }
    }

    func testRunWaitsForTheBackgroundJobFirst() {
        let pool = WorkerPool(threads: 2)
        let finished = UnsafeMutablePointer<Bool>.allocate(capacity: 2)
        defer { finished.deallocate() }
        for _ in 0..<20 {
            finished.initialize(repeating: false, count: 2)
            pool.startBackground(
                parts: 2,
                ClosureJob { part in
                    usleep(2000)
                    finished[part] = true
                })
            var seenByRun = [false, false]
            pool.run(parts: 1) { _ in seenByRun = [finished[0], finished[1]] }
            XCTAssertEqual(seenByRun, [true, true], "a run starts after every background part finished")
        }
    }

    func testCallerRunsPartsNoWorkerClaimed() {
        // Workers that sleep at once and are slow to wake: the wait takes the parts itself.
        let pool = WorkerPool(threads: 2, spinMicroseconds: 0)
        let caller = pthread_self()
        let onCaller = Atomic<Int>(0)
        for _ in 0..<200 {
            usleep(300)
            pool.startBackground(
                parts: 8,
                ClosureJob { _ in
                    if pthread_equal(pthread_self(), caller) != 0 { onCaller.wrappingAdd(1, ordering: .relaxed) }
                })
            pool.waitForBackground()
        }
        XCTAssertGreaterThan(onCaller.load(ordering: .relaxed), 0, "the waiting caller ran some background parts")
    }

    func testPoolWithoutWorkersRunsTheBackgroundJobAtOnce() {
        let pool = WorkerPool(threads: 1)
        var order: [Int] = []
        pool.startBackground(parts: 3, ClosureJob { order.append($0) })
        XCTAssertEqual(order, [0, 1, 2], "nothing to hand it to: it ran before startBackground returned")
        pool.waitForBackground()
        XCTAssertEqual(order, [0, 1, 2])
    }

    func testWaitWithoutABackgroundJobReturns() {
        let pool = WorkerPool(threads: 2)
        pool.waitForBackground()
        let sum = Atomic<Int>(0)
        pool.run(parts: 4) { sum.wrappingAdd($0, ordering: .relaxed) }
        XCTAssertEqual(sum.load(ordering: .relaxed), 6)
    }

    func testDeinitWaitsForTheBackgroundJob() {
        let finished = Atomic<Int>(0)
        for _ in 0..<20 {
            let pool = WorkerPool(threads: 2)
            pool.startBackground(
                parts: 2,
                ClosureJob { _ in
                    usleep(500)
                    finished.wrappingAdd(1, ordering: .relaxed)
                })
        }
        XCTAssertEqual(finished.load(ordering: .relaxed), 40)
    }
}
