import Dispatch
import Foundation

/// Wakes tasks that wait for something to happen (new messages, a stop request) or for a timeout,
/// whichever comes first. `wake()` releases every current waiter; with no one waiting, it is kept
/// for the next waiter, which returns at once (a notification that came while a task was busy is
/// not lost). `close()` releases everyone for good: a stop request is never missed by a task that
/// was busy when it came.
final class WakeSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var waiters: [UUID: CheckedContinuation<Void, Never>] = [:]
    private var closed = false
    /// A wake that found no one waiting, kept for the next `wait`.
    private var missed = false
    /// Signals closed with this one (`closes(_:)`).
    private var followers: [WakeSignal] = []

    /// Wakes every waiter now and every later one at once.
    func close() {
        let others: [WakeSignal] = lock.withLock {
            closed = true
            defer { followers.removeAll() }
            return followers
        }
        wake()
        others.forEach { $0.close() }
    }

    /// Releases everyone waiting now.
    func wake() {
        let released = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            if waiters.isEmpty { missed = true }
            let all = Array(waiters.values)
            waiters.removeAll()
            return all
        }
        for continuation in released { continuation.resume() }
    }

    /// True after `close()`.
    var isClosed: Bool { lock.withLock { closed } }

    /// Closes `other` too when this one is closed (at once if it already is): a loop that waits
    /// on a signal of its own hears a shutdown as well.
    func closes(_ other: WakeSignal) {
        let now: Bool = lock.withLock {
            if closed { return true }
            followers.append(other)
            return false
        }
        if now { other.close() }
    }

    /// Returns after `wake()` or `timeout`, whichever is first; with no timeout, after `wake()`.
    func wait(timeout: Duration?) async {
        if let timeout, timeout <= .zero { return }
        let id = UUID()
        var timer: Timeout.Handle?
        await withCheckedContinuation { continuation in
            let returnsNow = lock.withLock {
                if closed || missed {
                    missed = false
                    return true
                }
                waiters[id] = continuation
                return false
            }
            if returnsNow {
                continuation.resume()
                return
            }
            if let timeout { timer = Timeout.after(timeout) { [self] in release(id) } }
        }
        timer?.cancel()
    }

    private func release(_ id: UUID) {
        lock.withLock { waiters.removeValue(forKey: id) }?.resume()
    }
}
