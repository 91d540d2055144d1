/// A long-running part of a node: the processor supervisor, the configuration listener, the
/// heartbeat, the message vacuum, retention pruning, the HTTP ingress. A `ServiceGroup` runs
/// them together and stops them in reverse order, each told by its `ShutdownSignal`.
///
/// `run` returns once the signal is triggered and the service has kept what it promised (the
/// ingress answered every request it read, the supervisor's members delivered or released
/// what they hold). It throws only when the service cannot go on; the group then stops the others.
public protocol Service: Sendable {
    /// What logs call it.
    var name: String { get }
    func run(_ shutdown: ShutdownSignal) async throws
}

/// Tells one service to stop gracefully. A service waits on it between passes, so that a
/// shutdown cuts its waits short; once triggered it stays triggered.
public final class ShutdownSignal: Sendable {
    let signal = WakeSignal()

    public init() {}

    /// Asks the service to stop.
    public func trigger() { signal.close() }

    /// True once `trigger()` was called.
    public var isTriggered: Bool { signal.isClosed }

    /// Returns after `timeout`, or at once when the shutdown is triggered.
    public func wait(timeout: Duration) async { await signal.wait(timeout: timeout) }

    /// Returns when the shutdown is triggered.
    public func wait() async { await signal.wait(timeout: nil) }

    /// Closes `other` when the shutdown is triggered, so a loop waiting on its own signal hears it.
    func closes(_ other: WakeSignal) { signal.closes(other) }

    /// Waits until `latch` is closed (true) or the shutdown is triggered first (false).
    func wait(for latch: WakeSignal) async -> Bool {
        let either = WakeSignal()
        latch.closes(either)
        closes(either)
        await either.wait(timeout: nil)
        return !isTriggered
    }
}
