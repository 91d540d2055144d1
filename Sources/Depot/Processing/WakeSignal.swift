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

    /// Wakes every waiter now and every later one at once.
    func close() {
        lock.withLock { closed = true }
        wake()
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

    /// Returns after `wake()` or `timeout`, whichever is first.
    func wait(timeout: Duration) async {
        guard timeout > .zero else { return }
        let id = UUID()
        var timer: Task<Void, Never>?
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
            timer = Task { [self] in
                try? await Task.sleep(for: timeout)
                release(id)
            }
        }
        timer?.cancel()
    }

    private func release(_ id: UUID) {
        lock.withLock { waiters.removeValue(forKey: id) }?.resume()
    }
}
