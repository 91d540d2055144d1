import Depot
import Foundation
import Postgres

let nodeCommand = Command(
    name: "node",
    summary: "Run a worker node: the active processors it may run, until SIGTERM or SIGINT.",
    options: [
        OptionSpec(name: "name", value: "NAME", help: "the node's name, unique in the cluster; pinned_servers refers to it (required)"),
        OptionSpec(name: "lease", value: "DURATION", help: "how long a claim holds a message before another node may take it (default 30s)"),
        OptionSpec(name: "heartbeat", value: "DURATION", help: "how often the node marks itself alive in depot.nodes (default 5s)"),
        OptionSpec(name: "reconcile", value: "DURATION", help: "how often it re-reads processor rows without a notification (default 10s)"),
        OptionSpec(name: "connections", value: "N", help: "database connections the node may open (default 10)"),
    ],
    notes: """
        The node follows INSERT, UPDATE and DELETE of depot.processors and depot.endpoints rows
        without a restart. On SIGTERM or SIGINT it stops claiming, delivers or releases what it
        holds, removes its depot.nodes row and exits 0.
        Example: depot node --name node-a --lease 15s
        """
) { arguments in
    guard let name = arguments.value("name") else {
        throw CLIFailure.usage("--name is required: depot node --name node-a")
    }
    var configuration = Node.Configuration(name: name)
    configuration.lease = try arguments.duration("lease") ?? configuration.lease
    configuration.heartbeatInterval = try arguments.duration("heartbeat") ?? configuration.heartbeatInterval
    configuration.reconcileInterval = try arguments.duration("reconcile") ?? configuration.reconcileInterval
    if let problem = configuration.problem { throw CLIFailure.usage(problem) }
    let connections = try arguments.integer("connections", in: 2...1000) ?? 10
    let pool = ConnectionPool(.fromEnvironment(), maximumConnections: connections)
    let node = Node(configuration, pool: pool)
    let signals = onTerminationSignals { _ in Task { await node.stop() } }
    defer { signals.forEach { $0.cancel() } }
    do {
        try await node.run()
        await pool.close()
    } catch {
        await pool.close()
        throw error
    }
}
