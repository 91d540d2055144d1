import Foundation
import Postgres

/// The node's row in `depot.nodes`: registers it at start (waiting for the database when the
/// node takes messages over HTTP), marks it alive every heartbeat with what runs here and what
/// the processors did, and at shutdown, the last service to stop, reports once more and
/// removes the row.
final class NodeHeartbeat: Service {
    let name = "heartbeat"
    let configuration: Node.Configuration
    let pool: ConnectionPool
    let registry: NodeRegistry
    let metrics: NodeMetrics
    let supervisor: ProcessorSupervisor
    /// Closed once the node is registered.
    let registered: WakeSignal

    init(configuration: Node.Configuration, pool: ConnectionPool, metrics: NodeMetrics, supervisor: ProcessorSupervisor, registered: WakeSignal) {
        self.configuration = configuration
        self.pool = pool
        self.registry = NodeRegistry(pool: pool)
        self.metrics = metrics
        self.supervisor = supervisor
        self.registered = registered
    }

    func run(_ shutdown: ShutdownSignal) async throws {
        let node = configuration.name
        guard try await registerAtStart(shutdown) else { return }
        registered.close()
        NodeLog.info(node: node, "node started (pid \(ProcessInfo.processInfo.processIdentifier))")
        let loop = PeriodicLoop(work: "heartbeat", node: node, interval: configuration.heartbeatInterval,
                                nudge: supervisor.changed, waitsFirst: true)
        await loop.run(until: shutdown) { try await self.runOnce() }
        await report()  // what the members did since the last beat, before the row goes
        do { try await registry.deregister(node) } catch { NodeLog.warning(node: node, "could not deregister: \(error)") }
        NodeLog.info(node: node, "node stopped")
    }

    /// One heartbeat; registers the node again when an operator removed its row.
    func runOnce() async throws {
        if await !report() { try await register() }
    }

    /// Registers the node; with `waitForDatabase`, retries until the database answers or the
    /// node is stopped (then returns false). Without it, the first failure is thrown.
    private func registerAtStart(_ shutdown: ShutdownSignal) async throws -> Bool {
        var backoff = Backoff()
        while !shutdown.isTriggered {
            do {
                try await pool.withConnection { try await Migrator().requireCurrent(on: $0) }
                try await register()
                return true
            } catch let error as PostgresError where configuration.waitForDatabase && error.isConnectionLoss {
                let wait = backoff.failed()
                if backoff.failures == 1 { NodeLog.warning(node: configuration.name, "database unreachable: \(error); waiting for it") }
                await shutdown.wait(timeout: wait)
            }
        }
        return false
    }

    /// Alive, what runs here, and the processors' activity since the last beat (given back to
    /// the metrics when it cannot be written, so the next beat carries it). Returns false only
    /// when the node's row is gone (an operator removed it).
    @discardableResult
    private func report() async -> Bool {
        let activity = metrics.takeActivity()
        do {
            return try await registry.heartbeat(configuration.name, running: supervisor.runningProcessors(),
                                                heartbeatInterval: configuration.heartbeatInterval, activity: activity)
        } catch {
            metrics.restoreActivity(activity)
            NodeLog.warning(node: configuration.name, "heartbeat failed: \(error)")
            return true
        }
    }

    private func register() async throws {
        try await registry.register(configuration.name, host: ProcessInfo.processInfo.hostName,
                                    pid: Int(ProcessInfo.processInfo.processIdentifier), version: depotVersion,
                                    heartbeatInterval: configuration.heartbeatInterval)
    }
}
