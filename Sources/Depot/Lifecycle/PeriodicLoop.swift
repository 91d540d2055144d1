/// The one loop of every periodic service (heartbeat, reconcile, vacuum, pruning): a pass, then
/// a wait of `interval`, cut short by `nudge` or the shutdown. After a failed pass it waits the
/// shared `Backoff` instead (100 ms doubling, at most `interval`), says so once per streak, and
/// says so again when a pass works. The pass is the service's `runOnce`, which tests call directly.
struct PeriodicLoop: Sendable {
    /// What the log calls the work, e.g. "vacuum of depot.messages".
    let work: String
    let node: String
    let interval: Duration
    /// Wakes the loop before its interval is up (new rows to read, a change to report).
    var nudge: WakeSignal?
    /// Waits an interval before the first pass (pruning: a node just started has nothing to prune).
    var waitsFirst = false

    /// Runs `pass` until `shutdown` is triggered; returns after the pass under way ends.
    func run(until shutdown: ShutdownSignal, _ pass: @Sendable () async throws -> Void) async {
        let wake = nudge ?? WakeSignal()
        shutdown.closes(wake)
        var backoff = Backoff(limit: max(interval, Backoff().first))
        if waitsFirst { await wake.wait(timeout: interval) }
        while !shutdown.isTriggered {
            var wait = interval
            do {
                try await pass()
                if backoff.failures > 0 { NodeLog.info(node: node, "\(work) works again") }
                backoff.succeeded()
            } catch {
                wait = backoff.failed()
                if backoff.failures == 1 { NodeLog.warning(node: node, "\(work) failed: \(error); retrying") }
            }
            if shutdown.isTriggered { return }
            await wake.wait(timeout: wait)
        }
    }
}
