import Files
import DataSources
import CFloatEnvironment
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// A fixed set of worker threads that run the parts of one kernel call together with the calling
/// thread. `run` allocates nothing: the body is a non-escaping closure whose reference is parked in a
/// preallocated slot for the duration of the call.
///
/// Waiting: a worker spins on the generation counter for `spinMicroseconds` after each job, then sleeps
/// on a condition variable. The default spin outlasts the gaps between the parallel kernels of a
/// training step (the single-threaded kernels between them take up to a few hundred microseconds), so
/// the workers stay awake through a step and a hand-off costs a cache line, not a futex wake-up (tens of
/// microseconds, more on a loaded machine). After the first `eagerSpinMicroseconds` a spinning thread
/// yields its core between polls, so another process that needs the core gets it; an idle pool sleeps
/// and costs nothing. The caller waits for the workers the same way.
///
/// A job can also run in the background (`startBackground`): the workers take its parts while the
/// caller goes on, and the next `run` waits for it first.
///
/// `run` and `startBackground` must be called from one thread at a time and not from inside a body.
public final class WorkerPool {
    /// Threads that run parts, the caller included.
    public let threads: Int
    private let state: PoolState
    private var workers: [pthread_t] = []
    /// The background job not yet waited for: its generation and parts.
    private var background: (generation: Int, parts: Int)?

    /// - Parameters:
    ///   - threads: total threads running parts, the calling thread included (values below 1 mean 1).
    ///   - spinMicroseconds: how long an idle thread polls before it sleeps.
    ///   - eagerSpinMicroseconds: how long it polls without yielding its core first.
    public init(threads: Int, spinMicroseconds: Int = 400, eagerSpinMicroseconds: Int = 20) {
        self.threads = max(1, threads)
        state = PoolState(
            workerCount: self.threads - 1, spinNanoseconds: max(0, spinMicroseconds) * 1000,
            eagerSpinNanoseconds: max(0, eagerSpinMicroseconds) * 1000)
        let state = self.state
        for _ in 0..<(self.threads - 1) {
            let started = startThread {
                mlpc_enable_flush_to_zero()
                state.workerLoop()
            }
            // No more threads to be had: run with the ones that started. Parts are claimed, not
            // assigned, so fewer workers only means the caller runs more of them.
            guard let thread = started else { break }
            workers.append(thread)
        }
        state.workerCount = workers.count
    }

    deinit {
        waitForBackground()
        state.stop()
        for thread in workers { pthread_join(thread, nil) }
    }

    /// Runs body(0), body(1), ... body(parts - 1), each exactly once, spread over the pool; the calling
    /// thread runs part 0 and then claims the rest alongside the workers. Returns when every part has
    /// finished, and everything the parts wrote is then visible to the caller. The caller waits for parts,
    /// not for workers: a worker that another process keeps off its core only means the caller runs more
    /// of the parts itself.
    public func run(parts: Int, _ body: (Int) -> Void) {
        waitForBackground()
        guard parts > 1, parts <= PoolState.maxParts, state.workerCount > 0 else {
            for part in 0..<max(parts, 0) { body(part) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            let generation = state.begin(parts: parts, firstClaimable: 1, body: escapable, job: nil)
            escapable(0)
            state.runClaimedParts(of: generation)
            state.waitForParts(parts)
            state.end()
        }
    }

    /// Hands job.run(part: 0), ... job.run(part: parts - 1) to the workers and returns at once, so they
    /// run while the caller does other work (the training step gathers the next batch this way while it
    /// runs kernels on one thread). `waitForBackground` returns when every part has finished; the next
    /// `run` and `startBackground` call it first. Parts no worker has claimed by then run on the caller,
    /// so a worker kept off its core, or a pool without workers, costs time, never a result.
    ///
    /// The pool keeps `job` until the wait; it must not call the pool. A job is an object rather than a
    /// closure so that handing it over allocates nothing (an escaping closure stored for another thread
    /// gets a new context each time).
    public func startBackground(parts: Int, _ job: PoolJob) {
        waitForBackground()
        guard parts > 0 else { return }
        guard parts <= PoolState.maxParts, state.workerCount > 0 else {
            for part in 0..<parts { job.run(part: part) }
            return
        }
        background = (state.begin(parts: parts, firstClaimable: 0, body: nil, job: job), parts)
    }

    /// Waits for the job `startBackground` started, running its unclaimed parts on the calling thread;
    /// returns at once when there is none. Everything its parts wrote is then visible to the caller.
    public func waitForBackground() {
        guard let job = background else { return }
        background = nil
        state.runClaimedParts(of: job.generation)
        state.waitForParts(job.parts)
        state.end()
    }
}

/// Work the pool runs in parts in the background (`WorkerPool.startBackground`).
public protocol PoolJob: AnyObject {
    func run(part: Int)
}

/// The state workers share with the pool. A class so the workers can hold it while the pool's own
/// deinit runs; the counters are atomics and the body slot is written only while no part is claimable.
private final class PoolState: @unchecked Sendable {
    static let maxParts = 0xFFFF
    /// The current job in one word, so that a claim checks the job and takes a part in one
    /// compare-and-swap: generation << 32 | parts << 16 | next unclaimed part. A worker that wakes late
    /// cannot take a part of a newer job with an older job's body.
    let job = Atomic<Int>(0)
    /// Parts of the current job finished (the caller's part 0 of a `run` counts from the start).
    let completedParts = Atomic<Int>(0)
    let sleepingWorkers = Atomic<Int>(0)
    let callerSleeping = Atomic<Bool>(false)
    let stopping = Atomic<Bool>(false)
    /// What the current job runs: a `run` call's body, or a background job.
    let body: UnsafeMutablePointer<((Int) -> Void)?>
    let backgroundJob: UnsafeMutablePointer<PoolJob?>
    let mutex: UnsafeMutablePointer<pthread_mutex_t>
    let wakeWorkers: UnsafeMutablePointer<pthread_cond_t>
    let wakeCaller: UnsafeMutablePointer<pthread_cond_t>
    var workerCount: Int
    let spinNanoseconds: Int
    let eagerSpinNanoseconds: Int
    /// The caller's count of jobs (31 bits, wrapping).
    private var generation = 0

    init(workerCount: Int, spinNanoseconds: Int, eagerSpinNanoseconds: Int) {
        self.workerCount = workerCount
        self.spinNanoseconds = spinNanoseconds
        self.eagerSpinNanoseconds = min(eagerSpinNanoseconds, spinNanoseconds)
        body = .allocate(capacity: 1)
        body.initialize(to: nil)
        backgroundJob = .allocate(capacity: 1)
        backgroundJob.initialize(to: nil)
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        wakeWorkers = .allocate(capacity: 1)
        pthread_cond_init(wakeWorkers, nil)
        wakeCaller = .allocate(capacity: 1)
        pthread_cond_init(wakeCaller, nil)
    }

    deinit {
        body.deinitialize(count: 1)
        body.deallocate()
        backgroundJob.deinitialize(count: 1)
        backgroundJob.deallocate()
        pthread_cond_destroy(wakeCaller)
        wakeCaller.deallocate()
        pthread_cond_destroy(wakeWorkers)
        wakeWorkers.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always) static func generation(of word: Int) -> Int { word >> 32 }
    @inline(__always) static func parts(of word: Int) -> Int { (word >> 16) & maxParts }
    @inline(__always) static func next(of word: Int) -> Int { word & maxParts }

    /// Publishes a job whose parts below `firstClaimable` the caller runs (and counts as finished);
    /// returns its generation.
    func begin(parts count: Int, firstClaimable: Int, body: ((Int) -> Void)?, job: PoolJob?) -> Int {
        self.body.pointee = body
        backgroundJob.pointee = job
        completedParts.store(firstClaimable, ordering: .relaxed)
        generation = (generation + 1) & 0x7FFF_FFFF
        // Sequentially consistent with the sleepers' count: either a worker about to sleep sees the new
        // job, or this thread sees it sleeping and wakes it. The store also publishes the body.
        self.job.store(generation << 32 | count << 16 | firstClaimable, ordering: .sequentiallyConsistent)
        if sleepingWorkers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(mutex)
            pthread_cond_broadcast(wakeWorkers)
            pthread_mutex_unlock(mutex)
        }
        return generation
    }

    func end() {
        // Every part has finished and none is left to claim, so nobody reads the slot; clearing it drops
        // the closure before withoutActuallyEscaping checks that it did not escape.
        body.pointee = nil
        backgroundJob.pointee = nil
    }

    /// Claims and runs parts of job `generation` until none is left (or a newer job replaced it).
    func runClaimedParts(of generation: Int) {
        var word = job.load(ordering: .acquiring)
        while true {
            let count = Self.parts(of: word), part = Self.next(of: word)
            guard Self.generation(of: word) == generation, part < count else { return }
            let (claimed, current) = job.compareExchange(
                expected: word, desired: word + 1, ordering: .acquiringAndReleasing)
            guard claimed else {
                word = current
                continue
            }
            // The job cannot end before this claimed part completes, so its body is still in the slot.
            if let body = body.pointee {
                body(part)
            } else {
                backgroundJob.pointee?.run(part: part)
            }
            let done = completedParts.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
            if done == count && callerSleeping.load(ordering: .sequentiallyConsistent) {
                pthread_mutex_lock(mutex)
                pthread_cond_signal(wakeCaller)
                pthread_mutex_unlock(mutex)
            }
            word = job.load(ordering: .acquiring)
        }
    }

    func waitForParts(_ count: Int) {
        if spin(until: { completedParts.load(ordering: .acquiring) == count }) { return }
        callerSleeping.store(true, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(mutex)
        while completedParts.load(ordering: .sequentiallyConsistent) != count {
            pthread_cond_wait(wakeCaller, mutex)
        }
        pthread_mutex_unlock(mutex)
        callerSleeping.store(false, ordering: .relaxed)
    }

    func workerLoop() {
        var seen = 0
        while true {
            waitForJob(after: seen)
            seen = Self.generation(of: job.load(ordering: .acquiring))
            if stopping.load(ordering: .acquiring) { return }
            runClaimedParts(of: seen)
        }
    }

    private func waitForJob(after seen: Int) {
        let changed = { Self.generation(of: self.job.load(ordering: .acquiring)) != seen }
        if spin(until: changed) { return }
        sleepingWorkers.wrappingAdd(1, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(mutex)
        while Self.generation(of: job.load(ordering: .sequentiallyConsistent)) == seen {
            pthread_cond_wait(wakeWorkers, mutex)
        }
        pthread_mutex_unlock(mutex)
        sleepingWorkers.wrappingSubtract(1, ordering: .relaxed)
    }

    /// Polls `condition` for at most spinNanoseconds, yielding the core between polls after the first
    /// eagerSpinNanoseconds; true when it became true.
    @inline(__always)
    private func spin(until condition: () -> Bool) -> Bool {
        if condition() { return true }
        guard spinNanoseconds > 0 else { return false }
        let start = monotonicNanoseconds()
        let politeFrom = start + eagerSpinNanoseconds
        let deadline = start + spinNanoseconds
        var polite = eagerSpinNanoseconds == 0
        var polls = 0
        while true {
            if condition() { return true }
            polls += 1
            if polite {
                // sched_yield returns at once when nothing else wants this core.
                sched_yield()
                if polls & 7 == 0 && monotonicNanoseconds() >= deadline { return condition() }
            } else if polls & 63 == 0 {
                // Reading the clock costs about as much as a few dozen polls; check it now and then.
                let now = monotonicNanoseconds()
                if now >= deadline { return condition() }
                polite = now >= politeFrom
            }
        }
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        // A job of no parts with a new generation: every worker wakes, sees `stopping` and returns.
        generation = (generation + 1) & 0x7FFF_FFFF
        job.store(generation << 32, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(wakeWorkers)
        pthread_mutex_unlock(mutex)
    }
}

private func monotonicNanoseconds() -> Int {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int(now.tv_sec) * 1_000_000_000 + Int(now.tv_nsec)
}
