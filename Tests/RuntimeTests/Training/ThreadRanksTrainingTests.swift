import Foundation
import KernelInterface
import MallocCounter
import Planner
import SpecParser
import XCTest

@testable import DataSources
@testable import Execution
@testable import Runtime

/// The data-parallel trainer without MPI: N ranks as N threads of this process, joined by
/// `ThreadRanks`, a test double of the MPI collectives (each rank sums the ranks' slots in rank order
/// between barriers). The end-to-end tests under mpirun are in mlpcTests' DataParallelTests.
final class ThreadRanksTrainingTests: XCTestCase {
    func plan(_ spec: Spec, ranks: Int) throws -> Plan {
        let target = hostTarget(threads: 1, isa: CPUFeatures.current().bestISA)
        let (plan, diagnostics) = makePlan(spec, target: target, options: PlanOptions(ranks: ranks))
        guard let plan, !diagnostics.hasErrors else { throw TestFailure("plan failed: \(diagnostics)") }
        return plan
    }

    /// Trains `epochs` epochs on `ranks` threads; returns each rank's parameter block and model state
    /// (batch norm's running statistics), and the last test accuracy.
    func train(ranks: Int, epochs: Int, directory: String, specText: String = TinyData.specText()) throws
        -> (parameters: [[Float]], states: [[Float]], accuracy: Double)
    {
        let (spec, _) = try TinyData.plan(specText, dataDirectory: directory)
        let plan = try plan(spec, ranks: ranks)
        let data = try loadData(plan: plan, log: { _ in })
        let group = ThreadRanks(size: ranks, capacityBytes: 1 << 20)
        var parameters = [[Float]](repeating: [], count: ranks)
        var states = [[Float]](repeating: [], count: ranks)
        var accuracies = [Double](repeating: 0, count: ranks)
        var failures = [String](repeating: "", count: ranks)
        let lock = NSLock()
        onThreads(ranks) { rank in
            do {
                let run = try TrainingRun(
                    spec: spec, plan: plan, kernels: kernels(for: plan.target.isa), data: data,
                    options: .init(epochs: epochs, seed: spec.seed.value, outputDirectory: directory + "/out-\(UUID().uuidString)", mlpcVersion: "test"),
                    ranks: group.member(rank))
                try run.agreeAcrossRanks()
                try run.prepareOutput()
                var accuracy = 0.0
                for epoch in 1...epochs { accuracy = try run.runEpoch(epoch).testAccuracy }
                let block = Array(UnsafeBufferPointer(start: run.trainer.executor.parameters, count: plan.parameterBlockFloats))
                let state = run.trainer.executor.modelState.map { Array(UnsafeBufferPointer(start: $0, count: plan.modelStateFloats)) } ?? []
                lock.withLock {
                    parameters[rank] = block
                    states[rank] = state
                    accuracies[rank] = accuracy
                }
            } catch {
                lock.withLock { failures[rank] = "rank \(rank): \(error)" }
            }
        }
        XCTAssertEqual(failures.filter { !$0.isEmpty }, [])
        XCTAssertEqual(Set(accuracies).count, 1, "the ranks evaluated differently: \(accuracies)")
        return (parameters, states, accuracies[0])
    }

    func testRanksHoldTheSameParametersAndLearnWhatOneProcessLearns() throws {
        // 114 rows in batches of 16: the last batch has 2 rows, so with 3 ranks one share is empty.
        let directory = try TinyData.makeDirectory(self, trainCount: 114)
        let one = try train(ranks: 1, epochs: 4, directory: directory)
        for ranks in [2, 3] {
            let first = try train(ranks: ranks, epochs: 4, directory: directory)
            for rank in 1..<ranks { XCTAssertEqual(first.parameters[rank], first.parameters[0], "\(ranks) ranks: rank \(rank) differs from rank 0") }
            let again = try train(ranks: ranks, epochs: 4, directory: directory)
            XCTAssertEqual(again.parameters[0], first.parameters[0], "\(ranks) ranks: two runs differ")
            // The same model up to float rounding: the ranks sum their rows' gradients in another order.
            let largest = zip(first.parameters[0], one.parameters[0]).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThan(largest, 1e-3, "\(ranks) ranks drift from one process")
            XCTAssertEqual(first.accuracy, one.accuracy, accuracy: 100.0 / 28 + 1e-9, "\(ranks) ranks: \(first.accuracy)% against \(one.accuracy)%")
        }
    }

    func testRanksOfABatchNormModelHoldTheSameRunningStatistics() throws {
        // 114 rows: 8 steps an epoch, the last of 2 rows (with 3 ranks one share is empty).
        let directory = try TinyData.makeDirectory(self, trainCount: 114)
        // A batch norm after a convolution: a share of one row still has H x W values per channel (after a
        // linear it would be refused, see the test below).
        let text = TinyData.specText(layers: "    - conv2d: {out: 4, kernel: 3}\n    - batch_norm\n    - relu\n    - flatten\n    - linear: {out: 3}")
        let one = try train(ranks: 1, epochs: 3, directory: directory, specText: text)
        for ranks in [2, 3] {
            let run = try train(ranks: ranks, epochs: 3, directory: directory, specText: text)
            // running_mean and running_var of 4 channels, then num_batches_tracked, each from a 16-float line.
            XCTAssertEqual(run.states[0].count, 48)
            for rank in 1..<ranks {
                XCTAssertEqual(run.parameters[rank], run.parameters[0], "\(ranks) ranks: rank \(rank)'s parameters differ from rank 0's")
                XCTAssertEqual(run.states[rank], run.states[0], "\(ranks) ranks: rank \(rank)'s running statistics differ from rank 0's")
            }
            XCTAssertEqual(run.states[0][32], 24, "\(ranks) ranks: the batches counted are the model's steps")
            // Each rank normalizes its own share: not one process's model, but as good.
            XCTAssertNotEqual(run.states[0], one.states[0])
            XCTAssertTrue(run.states[0][0..<4].allSatisfy { $0 != 0 } && run.states[0][16..<20].allSatisfy { $0 != 1 }, "not updated")
            XCTAssertEqual(run.accuracy, one.accuracy, accuracy: 100.0 / 28 * 2 + 1e-9)
        }
    }

    /// Each rank normalizes its own share, so a batch norm after a linear is refused when a batch would
    /// give some rank one row: 114 rows in batches of 16 end in 2 rows, 1 for each of 2 ranks; batches of
    /// 3 give one of 2 ranks one row every step. One process and 118 rows (a last batch of 6) are fine.
    func testASplitThatGivesARankOneRowBeforeA1dBatchNormIsRefused() throws {
        let layers = "    - flatten\n    - linear: {out: 16, activation: relu}\n    - batch_norm\n    - linear: {out: 3}"
        let (spec, _) = try TinyData.plan(TinyData.specText(layers: layers, batch: 16), dataDirectory: try TinyData.makeDirectory(self))
        let two = try plan(spec, ranks: 2)
        let last = try XCTUnwrap(oneRowBatchNormError(plan: two, spec: spec, examples: 114, batchSize: 16))
        XCTAssertEqual(
            last.message,
            "batch_norm layer 'bn1' would train on a share of 1 row: 2 ranks split the last batch of 2 rows (114 training examples, batch_size 16: 114 % 16 = 2) into shares of 1, 1, and each rank normalizes its own share, where a share of one row has each feature's batch variance 0 / 0")
        XCTAssertEqual(last.fix, "set `drop_last: true`, or a batch_size that gives every rank 2 rows or more (17), or fewer ranks")
        let every = try XCTUnwrap(oneRowBatchNormError(plan: two, spec: spec, examples: 118, batchSize: 3))
        XCTAssertTrue(every.message.contains("2 ranks split every batch of 3 rows into shares of 2, 1"), every.message)
        XCTAssertNil(oneRowBatchNormError(plan: two, spec: spec, examples: 118, batchSize: 16))
        XCTAssertNil(oneRowBatchNormError(plan: try plan(spec, ranks: 1), spec: spec, examples: 114, batchSize: 16))
    }

    func testASharedStepAllocatesNothing() throws {
        guard malloc_counter_available() == 1 else { throw XCTSkip("malloc interposition is off under sanitizers") }
        let directory = try TinyData.makeDirectory(self, trainCount: 120)
        let (spec, _) = try TinyData.plan(TinyData.specText(), dataDirectory: directory)
        let plan = try plan(spec, ranks: 2)
        let data = try loadData(plan: plan, log: { _ in })
        let group = ThreadRanks(size: 2, capacityBytes: 1 << 20)
        var allocations = -1
        var failures: [String] = []
        let lock = NSLock()
        onThreads(2) { rank in
            do {
                let member = group.member(rank)
                let executor = try StepExecutor(plan: plan, kernels: kernels(for: plan.target.isa), pool: WorkerPool(threads: 1), dropoutSeed: 1)
                initializeParameters(plan, seed: 1, into: executor.parameters)
                let trainer = Trainer(
                    executor: executor, train: data.train, test: data.test, seed: 3, shuffle: true, dropLast: false, validationFraction: 0)
                trainer.rankGroup = member
                trainer.prepareOrder(epoch: 1)
                let parallel = try XCTUnwrap(plan.dataParallel)
                try data.train.withBatchSamples { samples in
                    let samples = try XCTUnwrap(samples)
                    try trainer.epochOrder.withUnsafeBufferPointer { order in
                        var sums = Trainer.StepSums(lossSum: 0, rowsSeen: 0, lastLoss: 0)
                        // Allocations while both ranks run `steps` (counted by rank 0, between barriers).
                        func count(_ steps: Range<Int>) throws -> Int {
                            member.barrier()
                            if rank == 0 { malloc_counter_start() }
                            member.barrier()
                            try trainer.runSharedSteps(
                                epoch: 1, steps: steps, order: order, samples: samples, parallel: parallel, group: member, sums: &sums)
                            member.barrier()
                            let counted = rank == 0 ? malloc_counter_stop() : 0
                            member.barrier()
                            return counted
                        }
                        _ = try count(0..<3)  // warm-up
                        // What calling costs with no step (the harness, the call); then steps 5-7 (after the
                        // epoch's halfway step, where the live-first order's record restarts).
                        let call = try count(5..<5)
                        let steps = try count(5..<trainer.stepsPerEpoch)
                        if rank == 0 { lock.withLock { allocations = steps - call } }
                    }
                }
            } catch {
                lock.withLock { failures.append("rank \(rank): \(error)") }
            }
        }
        XCTAssertEqual(failures, [])
        XCTAssertEqual(allocations, 0, "the ranks' 3 steps allocated")
    }
}

/// Runs `body(rank)` for each rank on a thread of its own (all at once: the ranks wait for each other
/// in barriers, which a pool of fewer threads than ranks would never pass) and returns when all end.
func onThreads(_ count: Int, _ body: @escaping (Int) -> Void) {
    let done = DispatchGroup()
    for rank in 0..<count {
        done.enter()
        let thread = Thread {
            body(rank)
            done.leave()
        }
        thread.stackSize = 8 << 20
        thread.start()
    }
    done.wait()
}

/// N ranks as N threads: the collectives of `RankGroup` over shared slots and a barrier. Every rank
/// computes a sum itself, adding the slots in rank order, so every rank gets the same bits.
final class ThreadRanks {
    let size: Int
    let capacityBytes: Int
    let slots: [UnsafeMutableRawPointer]
    let barrierState: UnsafeMutablePointer<pthread_barrier_t>

    init(size: Int, capacityBytes: Int) {
        self.size = size
        self.capacityBytes = capacityBytes
        slots = (0..<size).map { _ in UnsafeMutableRawPointer.allocate(byteCount: capacityBytes, alignment: 64) }
        barrierState = .allocate(capacity: 1)
        pthread_barrier_init(barrierState, nil, UInt32(size))
    }

    deinit {
        pthread_barrier_destroy(barrierState)
        barrierState.deallocate()
        for slot in slots { slot.deallocate() }
    }

    func member(_ rank: Int) -> Member { Member(rank: rank, ranks: self) }

    func wait() { pthread_barrier_wait(barrierState) }

    final class Member: RankGroup {
        let rank: Int
        let ranks: ThreadRanks
        var size: Int { ranks.size }

        init(rank: Int, ranks: ThreadRanks) {
            self.rank = rank
            self.ranks = ranks
        }

        func add<T: AdditiveArithmetic>(_ values: UnsafeMutablePointer<T>, count: Int) {
            precondition(count * MemoryLayout<T>.stride <= ranks.capacityBytes)
            ranks.slots[rank].copyMemory(from: values, byteCount: count * MemoryLayout<T>.stride)
            ranks.wait()
            // (s0 + s1) + s2 ..., element by element; nothing allocated.
            let first = ranks.slots[0].assumingMemoryBound(to: T.self)
            for i in 0..<count { values[i] = first[i] }
            for r in 1..<ranks.size {
                let slot = ranks.slots[r].assumingMemoryBound(to: T.self)
                for i in 0..<count { values[i] += slot[i] }
            }
            ranks.wait()
        }

        func sum(_ values: UnsafeMutablePointer<Float>, count: Int) { add(values, count: count) }
        func sum(_ values: UnsafeMutablePointer<Double>, count: Int) { add(values, count: count) }
        func sum(_ values: UnsafeMutablePointer<Int32>, count: Int) { add(values, count: count) }

        func broadcast(_ bytes: UnsafeMutableRawPointer, count: Int, from root: Int) {
            if rank == root { ranks.slots[root].copyMemory(from: bytes, byteCount: count) }
            ranks.wait()
            if rank != root { bytes.copyMemory(from: ranks.slots[root], byteCount: count) }
            ranks.wait()
        }

        func gather(_ record: [UInt8]) -> [[UInt8]] {
            record.withUnsafeBytes { ranks.slots[rank].copyMemory(from: $0.baseAddress!, byteCount: record.count) }
            ranks.wait()
            let all = ranks.slots.map { Array(UnsafeRawBufferPointer(start: $0, count: record.count)) }
            ranks.wait()
            return all
        }

        func barrier() { ranks.wait() }
    }
}
