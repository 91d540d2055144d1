import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Marks threads of the caller's own (an HTTP connection's thread, say) on which a statement
/// may block: a `Connection` used from such a thread runs libpq right there instead of handing
/// the statement to its own thread and resuming the caller on Swift's pool afterwards: two
/// thread switches less per statement. Never mark a thread of Swift's cooperative pool.
///
/// A statement on a marked thread that has a deadline (`withDeadline(_:_:)`) waits for the
/// server no longer than it, then gives up on the connection, as a caller suspended on it would.
public enum BlockingThread {
    /// Lets statements block the current thread from now on (for the thread's life).
    public static func allowOnCurrentThread() {
        pthread_setspecific(keys.allowed, UnsafeRawPointer(bitPattern: 1))
    }

    /// Whether statements may block the current thread.
    static var isAllowed: Bool { pthread_getspecific(keys.allowed) != nil }

    /// The deadline of statements run from this thread while `body` runs, if it is one that
    /// may block; `body` is synchronous, so the deadline cannot leak to another caller.
    public static func withDeadline<T>(_ deadline: ContinuousClock.Instant, _ body: () throws -> T) rethrows -> T {
        guard isAllowed else { return try body() }
        let previous = pthread_getspecific(keys.deadline)
        let box = Unmanaged.passRetained(DeadlineBox(deadline))
        pthread_setspecific(keys.deadline, box.toOpaque())
        defer {
            pthread_setspecific(keys.deadline, previous)
            box.release()
        }
        return try body()
    }

    /// The deadline set by `withDeadline` on this thread, if any.
    static var deadline: ContinuousClock.Instant? {
        guard let pointer = pthread_getspecific(keys.deadline) else { return nil }
        return Unmanaged<DeadlineBox>.fromOpaque(pointer).takeUnretainedValue().deadline
    }

    private final class DeadlineBox {
        let deadline: ContinuousClock.Instant
        init(_ deadline: ContinuousClock.Instant) { self.deadline = deadline }
    }

    private struct Keys: @unchecked Sendable {
        var allowed = pthread_key_t()
        var deadline = pthread_key_t()
        init() {
            pthread_key_create(&allowed, nil)
            pthread_key_create(&deadline, nil)
        }
    }

    private static let keys = Keys()
}
