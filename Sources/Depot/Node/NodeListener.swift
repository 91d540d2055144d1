import Postgres

/// LISTENs for row changes (`depot_config`) and new messages (`depot_messages`) on a
/// connection of its own, which keeps its session (behind a transaction pool, the direct one
/// `ConnectionConfiguration.sessionConfiguration()` names), and passes them on: a reconcile, and a wake-up for the members and
/// HTTP claims waiting on the store. When the connection breaks it reconnects with the shared
/// back-off, then has the rows read again and wakes everyone, since notifications may have been
/// missed meanwhile.
struct NodeListener: Service {
    let name = "listener"
    let node: String
    let configuration: ConnectionConfiguration
    let supervisor: ProcessorSupervisor
    let arrivals: StoreArrivals
    /// Closed once the node is registered; the listener connects only then.
    let registered: WakeSignal

    func run(_ shutdown: ShutdownSignal) async {
        guard await shutdown.wait(for: registered) else { return }
        var backoff = Backoff()
        while !shutdown.isTriggered {
            do {
                let connection = try await Connection.connect(configuration)
                defer { connection.close() }
                try await connection.listen("depot_config")
                try await connection.listen("depot_messages")
                // Rows changed before LISTEN took effect sent notifications no one heard: read them
                // again, and let HTTP claims that waited meanwhile look again.
                supervisor.nudge.wake()
                arrivals.announceAll()
                if backoff.failures > 0 {
                    NodeLog.info(node: node, "listening again")
                    await supervisor.wakeAll()
                }
                backoff.succeeded()
                // On the connection's thread until shutdown or a broken connection: each
                // notification wakes its waiters from there, with no hop to Swift's pool and back.
                try await connection.receiveNotifications(while: { !shutdown.isTriggered }) { [supervisor] notification in
                    if notification.channel == "depot_config" {
                        supervisor.nudge.wake()
                    } else {
                        supervisor.wakeNow(store: notification.payload)
                    }
                }
            } catch {
                let wait = backoff.failed()
                if backoff.failures == 1 { NodeLog.warning(node: node, "listener lost: \(error); reconnecting") }
                await shutdown.wait(timeout: wait)
            }
        }
    }
}
