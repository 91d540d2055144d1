import Depot
import Foundation

let processorsCommand = Command(
    name: "processors",
    summary: "Show every processor: active or why not, the live nodes running it, its last 5 minutes (depot.processor_status).",
    options: [OptionSpec(name: "json", help: "print JSON for scripts")],
    notes: """
        NODES lists the live nodes running it with their members (node-a×2). DELIVERED, FAILED and DEAD
        count the last 5 minutes over every node, as the nodes report them with each heartbeat.
        Switch one on or off with: depot processor activate|deactivate NAME
        """
) { arguments in
    _ = try arguments.positionals(exactly: 0, usage: "depot processors [--json]")
    let processors = try await withDatabase { try await ProcessorAdmin(pool: $0).status() }
    if arguments.flag("json") { return try printJSON(processors) }
    printTable(["NAME", "KIND", "STORE", "ACTIVE", "NODES", "DELIVERED", "FAILED", "DEAD", "LAST ERROR"], processors.map { row in
        [row.name, row.kind.rawValue, row.store,
         row.active ? "yes" : "no: \(cell(row.deactivatedReason, limit: 50))",
         row.nodes.isEmpty ? "-" : row.nodes.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: ","),
         String(row.delivered5m), String(row.failed5m), String(row.deadLettered5m),
         row.lastError.map { "\(age(row.lastErrorAt)) ago: \(cell($0, limit: 50))" } ?? "-"]
    })
}
