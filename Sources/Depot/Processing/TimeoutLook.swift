import Synchronization

/// A clock shared by one processor's members on this node: true at most once per interval.
final class TimeoutLook: Sendable {
    private let last = Mutex<ContinuousClock.Instant?>(nil)

    func due(every interval: Duration) -> Bool {
        last.withLock { last in
            let now = ContinuousClock.now
            if let previous = last, now - previous < interval { return false }
            last = now
            return true
        }
    }
}
