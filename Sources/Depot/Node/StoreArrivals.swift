import Foundation

/// Fans the node's one LISTEN on `depot_messages` out to the HTTP claims waiting for a store's
/// messages (long polls), so that a thousand waiting requests cost no database connection
/// while they wait: the node's listener calls `announce(store)` for each notification, and
/// `announceAll()` after it reconnected (notifications may have been missed meanwhile).
///
/// No announcement is lost between a waiter's claim and its wait: a waiter reads the store's
/// `generation` before it claims, and `wait(for:after:)` returns at once when an announcement
/// came since. The number of requests waiting at once is bounded (`admit()`), since each holds
/// an HTTP connection and its thread.
public final class StoreArrivals: @unchecked Sendable {
    /// Most requests that may wait at once; more get 503. Default 512, half of the HTTP
    /// server's 1,024 connections, so that waiting consumers never lock producers out.
    public let maximumWaiting: Int
    private let lock = NSLock()
    private var generations: [String: UInt64] = [:]
    /// Added to every store's generation: `announceAll` bumps it instead of touching each store.
    private var everyone: UInt64 = 0
    private var waiters: [String: [UUID: CheckedContinuation<Void, Never>]] = [:]
    private var waiting = 0
    private var closed = false

    public init(maximumWaiting: Int = 512) {
        self.maximumWaiting = maximumWaiting
    }

    /// The store's announcements so far; read it before a claim, pass it to `wait` after.
    func generation(of store: String) -> UInt64 {
        lock.withLock { (generations[store] ?? 0) &+ everyone }
    }

    /// Wakes the requests waiting for `store` (a NOTIFY on `depot_messages` named it).
    public func announce(_ store: String) {
        let woken = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            generations[store, default: 0] &+= 1
            return waiters.removeValue(forKey: store).map { Array($0.values) } ?? []
        }
        for continuation in woken { continuation.resume() }
    }

    /// Wakes every waiting request (the listener reconnected and may have missed notifications).
    public func announceAll() {
        let woken = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            everyone &+= 1
            defer { waiters.removeAll() }
            return waiters.values.flatMap(\.values)
        }
        for continuation in woken { continuation.resume() }
    }

    /// Wakes everyone for good: waits return at once from now on (the node is stopping and
    /// its waiting requests answer with what they have).
    public func close() {
        lock.withLock { closed = true }
        announceAll()
    }

    /// True after `close()`.
    public var isClosed: Bool { lock.withLock { closed } }

    /// How many requests wait now.
    public var waitingCount: Int { lock.withLock { waiting } }

    /// Takes one of the `maximumWaiting` places; false when all are taken. Pair with `dismiss()`.
    func admit() -> Bool {
        lock.withLock {
            guard waiting < maximumWaiting else { return false }
            waiting += 1
            return true
        }
    }

    /// Gives back the place `admit()` took.
    func dismiss() {
        lock.withLock { waiting -= 1 }
    }

    /// Returns once `store` is announced after `generation` (at once if it already was), after
    /// `timeout`, or at once when closed.
    func wait(for store: String, after generation: UInt64, timeout: Duration) async {
        guard timeout > .zero else { return }
        let id = UUID()
        var timer: Timeout.Handle?
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let returnsNow = lock.withLock { () -> Bool in
                if closed || (generations[store] ?? 0) &+ everyone != generation { return true }
                waiters[store, default: [:]][id] = continuation
                return false
            }
            if returnsNow {
                continuation.resume()
                return
            }
            timer = Timeout.after(timeout) { [self] in release(id, of: store) }
        }
        timer?.cancel()
    }

    private func release(_ id: UUID, of store: String) {
        let continuation = lock.withLock { () -> CheckedContinuation<Void, Never>? in
            let found = waiters[store]?.removeValue(forKey: id)
            if waiters[store]?.isEmpty == true { waiters[store] = nil }
            return found
        }
        continuation?.resume()
    }
}
