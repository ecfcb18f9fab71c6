import Foundation

/// The lines `mlpc run` prints on standard output once training may be interrupted. Each is written
/// in full, waiting for a slow reader as print does, except while a stop is requested and the reader
/// takes nothing: then the rest of the line is dropped, so that the stop goes on to its checkpoint.
/// That is the case under mpirun after Ctrl-C: mpirun stops reading its ranks' output (a terminal of
/// a few KiB each) while it waits odls_base_sigkill_timeout to send them SIGTERM and as long again to
/// kill them, and a rank blocked in write(2) would never reach the step that sees the SIGTERM.
struct RunOutput {
    let stopRequested: () -> Bool

    /// Small writes: after poll's POLLOUT a pipe has room for a page and a terminal nearly always for
    /// more than this, so a write does not wait, and the stop request is checked between writes.
    static let chunkBytes = 64
    static let pollMilliseconds: Int32 = 100

    func line(_ text: String) {
        // What print left in stdio's buffer goes first.
        fflush(stdout)
        let bytes = Array((text + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            var descriptor = pollfd(fd: STDOUT_FILENO, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&descriptor, 1, Self.pollMilliseconds)
            if ready < 0 && errno != EINTR { return }
            if ready <= 0 {
                if stopRequested() { return }
                continue
            }
            let count = min(bytes.count - offset, Self.chunkBytes)
            let written = bytes.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress! + offset, count) }
            if written < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return
            }
            offset += written
        }
    }
}
