import Foundation

/// A one-shot timer for the waits of a node (a deadline, a wake-up signal, a long poll): `fire`
/// runs once after `delay` unless the returned handle is cancelled first.
///
/// One thread keeps every pending timer and sleeps until the earliest is due. Nearly every wait
/// ends before its timer (a statement answered, a signal came), so cancelling only forgets the
/// timer, and setting one wakes nothing unless it is due before the thread means to wake anyway.
/// A dispatch timer (what this was) cost every message a producer stored two wake-ups of
/// dispatch's threads, one when set and one when its time came, cancelled or not, on cores the
/// node shares with PostgreSQL. `fire` runs on that thread, so it must not block: resume a
/// continuation, yield to a stream.
enum Timeout {
    @discardableResult
    static func after(_ delay: Duration, _ fire: @escaping @Sendable () -> Void) -> Handle {
        Handle(id: TimerThread.shared.schedule(after: delay, fire))
    }

    /// A timer set by `after`.
    struct Handle: Sendable {
        fileprivate let id: UInt64

        /// Forgets the timer; `fire` will not run unless it already has (or is running).
        func cancel() { TimerThread.shared.cancel(id) }
    }
}

/// The thread behind `Timeout`: the pending timers by id, and when it means to wake next.
private final class TimerThread: @unchecked Sendable {
    static let shared = TimerThread()

    private struct Timer {
        let due: ContinuousClock.Instant
        let fire: @Sendable () -> Void
    }

    // Everything below is guarded by `condition`'s lock.
    private let condition = NSCondition()
    private var pending: [UInt64: Timer] = [:]
    private var lastID: UInt64 = 0
    /// When the thread wakes next at the latest; nil while nothing is pending (it sleeps until told).
    private var plannedWake: ContinuousClock.Instant?

    private init() {
        let thread = Thread { [self] in run() }
        thread.name = "depot.timeout"
        thread.start()
    }

    func schedule(after delay: Duration, _ fire: @escaping @Sendable () -> Void) -> UInt64 {
        // A delay of centuries is simply no deadline; clamped so the instant cannot overflow.
        let due = ContinuousClock.now + min(max(delay, .zero), .seconds(3_000_000_000))
        return condition.withLock {
            lastID &+= 1
            pending[lastID] = Timer(due: due, fire: fire)
            if plannedWake.map({ due < $0 }) ?? true {
                plannedWake = due
                condition.signal()
            }
            return lastID
        }
    }

    func cancel(_ id: UInt64) {
        condition.withLock { _ = pending.removeValue(forKey: id) }
    }

    private func run() {
        condition.lock()
        while true {
            let now = ContinuousClock.now
            let due = pending.filter { $0.value.due <= now }
            for id in due.keys { pending.removeValue(forKey: id) }
            // At most a second at a time: the wait is on the wall clock, which may be set back.
            plannedWake = pending.values.lazy.map(\.due).min().map { min($0, now + .seconds(1)) }
            if !due.isEmpty {
                condition.unlock()
                for timer in due.values.sorted(by: { $0.due < $1.due }) { timer.fire() }
                condition.lock()
                continue  // timers set while firing are looked at before sleeping
            }
            if let wake = plannedWake {
                let (seconds, attoseconds) = (wake - now).components
                _ = condition.wait(until: Date(timeIntervalSinceNow: Double(seconds) + Double(attoseconds) / 1e18))
            } else {
                condition.wait()
            }
        }
    }
}
