#if canImport(Glibc)
import Planner
import Files
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif

/// Starts a thread that runs `body`; nil when the system gives no thread (nothing is left behind then).
/// The caller joins it with pthread_join.
package func startThread(_ body: @escaping () -> Void) -> pthread_t? {
    let context = Unmanaged.passRetained(ThreadEntry(body)).toOpaque()
    var thread = pthread_t()
    guard pthread_create(&thread, nil, threadEntryMain, context) == 0 else {
        Unmanaged<ThreadEntry>.fromOpaque(context).release()
        return nil
    }
    return thread
}

/// Runs `background` on a new thread while this thread runs `here`, and returns both results once the
/// new thread has been joined, so nothing it started outlives the call. When no thread can be started
/// both run here, one after the other.
package func runConcurrently<Background, Here>(
    _ background: @escaping () -> Background, _ here: () -> Here
) -> (Background, Here) {
    let slot = ThreadResultSlot<Background>()
    guard let thread = startThread({ slot.value = background() }) else { return (background(), here()) }
    let hereValue = here()
    pthread_join(thread, nil)
    // The thread stored its result before it ended, and pthread_join orders that store before this read.
    guard let backgroundValue = slot.value else { preconditionFailure("the joined thread stored no result") }
    return (backgroundValue, hereValue)
}

/// Where a thread started by `runConcurrently` leaves its result (a class so the thread's closure and
/// the caller share it).
private final class ThreadResultSlot<Value> {
    var value: Value?
}

/// The closure a thread runs, passed through pthread_create's context pointer.
private final class ThreadEntry {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

#if canImport(Darwin)
private func threadEntryMain(_ context: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
    Unmanaged<ThreadEntry>.fromOpaque(context).takeRetainedValue().run()
    return nil
}
#else
private func threadEntryMain(_ context: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    guard let context else { return nil }
    Unmanaged<ThreadEntry>.fromOpaque(context).takeRetainedValue().run()
    return nil
}
#endif
