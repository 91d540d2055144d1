/// A service that is nothing but a periodic pass once the node is registered: the message
/// vacuum and retention pruning. The pass is the work's `runOnce`, which tests call directly.
struct PeriodicService: Service {
    let name: String
    let loop: PeriodicLoop
    /// Closed once the node is registered; the first pass waits for it.
    let registered: WakeSignal
    let pass: @Sendable () async throws -> Void

    func run(_ shutdown: ShutdownSignal) async {
        guard await shutdown.wait(for: registered) else { return }
        await loop.run(until: shutdown, pass)
    }
}
