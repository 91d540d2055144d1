import Foundation
import Postgres

/// Thrown by `withDeadline` when the operation did not finish in time.
public struct DeadlineExceeded: Error, Sendable, CustomStringConvertible {
    public let limit: Duration
    public var description: String { "no answer within \(limit)" }
}

/// Runs `operation`, giving up after `limit`. The operation is not cancelled on timeout (a
/// statement blocked in libpq cannot be), it finishes or fails in the background; callers
/// must make a late success harmless (producers do: the same message id is stored once).
/// The operation starts on the caller's thread (`Task.immediate`) and leaves it where it first
/// waits (for the connection's thread, for a producer): a message stored costs no hop to
/// Swift's pool on the way out.
func withDeadline<T: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    return try await withCheckedThrowingContinuation { continuation in
        let once = Once(continuation)
        let timer = Timeout.after(limit) { once.finish(.failure(DeadlineExceeded(limit: limit))) }
        // On a thread that may block (an HTTP connection's), statements the operation runs
        // before it first suspends wait there, so they get the deadline too.
        BlockingThread.withDeadline(.now + limit) {
            _ = Task.immediate {
                do { once.finish(.success(try await operation())) } catch { once.finish(.failure(error)) }
                timer.cancel()
            }
        }
    }
}

/// Resumes a continuation once, whichever of the operation and the timer comes first.
private final class Once<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, Error>?
    init(_ continuation: CheckedContinuation<T, Error>) { self.continuation = continuation }
    func finish(_ result: Result<T, Error>) {
        let waiting: CheckedContinuation<T, Error>? = lock.withLock {
            defer { continuation = nil }
            return continuation
        }
        waiting?.resume(with: result)
    }
}
