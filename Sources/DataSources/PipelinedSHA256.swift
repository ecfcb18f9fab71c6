#if canImport(Glibc)
import Planner
import Files
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// The SHA-256 of bytes that one thread decodes, computed on another thread as they arrive. Inflating
/// MNIST's train images takes about 0.2 s with zlib and hashing them 25-40 ms; with the hash on the
/// thread that has finished the smaller files, the hash adds almost nothing to the load. (libdeflate,
/// when the system has it, inflates them whole in about 0.1 s and publishes them all at once.)
///
/// The reader calls `begin` (the bytes hashed before the data, and where the data goes), `publish`
/// after each piece, `close` when no more will come (the end, or an error), then `waitForDigest`.
/// The hashing thread calls `hashUntilClosed`. Whichever of `hashUntilClosed` and `waitForDigest`
/// comes first does the hashing: when no other thread ever calls `hashUntilClosed` (none could be
/// started, or it is late), the reader hashes everything itself once it has closed. So the digest never
/// depends on a second thread, only the time does.
final class PipelinedSHA256: @unchecked Sendable {
    /// Bytes of the data written so far.
    private let ready = Atomic<Int>(0)
    /// The reader will publish nothing more.
    private let closed = Atomic<Bool>(false)
    /// Someone has taken the hashing (0: nobody yet).
    private let hashingClaimed = Atomic<Int>(0)
    /// `digest` is set.
    private let finished = Atomic<Bool>(false)
    // Written by the reader before its first release store (publish or close), read by the hasher
    // after an acquiring load that saw it.
    private var prefix: [UInt8] = []
    private var data: UnsafeRawPointer?
    // Written by the hasher before `finished`, read by the reader after it.
    private var digest: SHA256Digest

    init() {
        var nothing = SHA256()
        digest = nothing.finalize()
    }

    /// Reader: `prefix` is hashed before the data, which will be written to `data` in order.
    func begin(prefix: [UInt8], data: UnsafeRawPointer) {
        self.prefix = prefix
        self.data = data
    }

    /// Reader: the first `count` bytes of the data are written.
    func publish(_ count: Int) { ready.store(count, ordering: .releasing) }

    /// Reader: nothing more will be published. Calling it again does nothing.
    func close() { closed.store(true, ordering: .releasing) }

    /// Hashing thread: hashes the data as it is published until the reader closes, then leaves the
    /// digest for `waitForDigest`. Returns at once when the reader has already taken the hashing.
    func hashUntilClosed() {
        guard claimHashing() else { return }
        hashToTheEnd()
    }

    /// Reader, after `close`: the digest of the prefix and every published byte (of nothing when
    /// `begin` was never called). Hashes them here when no other thread has started to.
    func waitForDigest() -> SHA256Digest {
        if claimHashing() {
            hashToTheEnd()
        } else {
            var polls = 0
            while !finished.load(ordering: .acquiring) { Self.pause(&polls) }
        }
        return digest
    }

    /// One wait between polls: the other thread trails by a piece or two (tens of microseconds), so
    /// yield the core first, then sleep briefly.
    private static func pause(_ polls: inout Int) {
        polls += 1
        if polls < 64 { sched_yield() } else { usleep(50) }
    }

    private func claimHashing() -> Bool {
        hashingClaimed.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing).exchanged
    }

    private func hashToTheEnd() {
        var hasher = SHA256()
        var hashed = 0
        var began = false
        var idlePolls = 0
        while true {
            // Read `closed` before `ready`: once closed, the count read after it is the final one.
            let isClosed = closed.load(ordering: .acquiring)
            let count = ready.load(ordering: .acquiring)
            if !began && (count > 0 || isClosed) {
                guard data != nil else { break }  // closed before `begin`: nothing to hash
                hasher.update(prefix)
                began = true
            }
            if count > hashed, let data {
                hasher.update(UnsafeRawBufferPointer(start: data + hashed, count: count - hashed))
                hashed = count
                idlePolls = 0
                continue
            }
            if isClosed { break }
            Self.pause(&idlePolls)
        }
        digest = hasher.finalize()
        finished.store(true, ordering: .releasing)
    }
}
