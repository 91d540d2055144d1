import Foundation

/// Thrown by `withDeadline` when the operation did not finish in time.
public struct DeadlineExceeded: Error, Sendable, CustomStringConvertible {
    public let limit: Duration
    public var description: String { "no answer within \(limit)" }
}

/// Runs `operation`, giving up after `limit`. The operation is not cancelled on timeout (a
/// statement blocked in libpq cannot be), it finishes or fails in the background; callers
/// must make a late success harmless (producers do: the same message id is stored once).
func withDeadline<T: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    return try await withCheckedThrowingContinuation { continuation in
        let once = Once(continuation)
        // A dispatch timer rather than a sleeping task: cancelling it when the operation wins
        // (nearly always) wakes nothing, where a cancelled sleeping task woke a thread only to end.
        let timer = DispatchWorkItem { once.finish(.failure(DeadlineExceeded(limit: limit))) }
        let (seconds, attoseconds) = limit.components
        // DispatchTime + seconds clamps, so a limit of centuries is simply no deadline.
        DispatchQueue.global().asyncAfter(deadline: .now() + (Double(seconds) + Double(attoseconds) / 1e18), execute: timer)
        Task {
            do { once.finish(.success(try await operation())) } catch { once.finish(.failure(error)) }
            timer.cancel()
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
