import Depot
import Foundation

let nodesCommand = Command(
    name: "nodes",
    summary: "Show every registered node: alive or not, its last heartbeat and the processors it runs (depot.node_status).",
    options: [OptionSpec(name: "json", help: "print JSON for scripts")],
    notes: """
        A node is alive when its last heartbeat is within 3 of its heartbeat intervals. A node that
        stopped cleanly removes its row; one that died stays, not alive, until it starts again.
        """
) { arguments in
    _ = try arguments.positionals(exactly: 0, usage: "depot nodes [--json]")
    let nodes = try await withDatabase { try await NodeCatalog(pool: $0).status() }
    if arguments.flag("json") { return try printJSON(nodes) }
    printTable(["NAME", "ALIVE", "HOST", "PID", "VERSION", "HEARTBEAT", "STARTED", "MEMBERS", "PROCESSORS"], nodes.map { node in
        [node.name, node.alive ? "yes" : "no", cell(node.host, limit: 30), node.pid.map(String.init) ?? "-", node.version ?? "-",
         "\(age(node.heartbeatAt)) ago", timestamp(node.startedAt), String(node.members),
         node.processors.isEmpty ? "-" : node.processors.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: ",")]
    })
}
