import Depot
import Foundation

let statsCommand = Command(
    name: "stats",
    summary: "Show every store's ready, delayed, in-flight and dead-lettered messages (depot.store_stats).",
    options: [OptionSpec(name: "json", help: "print JSON for scripts")],
    notes: "A store with over 100,000 messages or dead letters shows estimates, marked ~ (\"estimated\": true in JSON)."
) { arguments in
    _ = try arguments.positionals(exactly: 0, usage: "depot stats [--json]")
    let stats = try await withDatabase { try await StoreCatalog(pool: $0).statistics() }
    if arguments.flag("json") { return try printJSON(stats) }
    printTable(["STORE", "KIND", "READY", "DELAYED", "IN FLIGHT", "DEAD", "OLDEST READY"], stats.map { row in
        [row.store, row.kind.rawValue, quantity(row.ready, estimated: row.estimated), quantity(row.delayed, estimated: row.estimated),
         quantity(row.inFlight, estimated: row.estimated), quantity(row.deadLetters, estimated: row.estimated),
         row.oldestReadyAgeSeconds.map { String(format: "%.1fs", $0) } ?? "-"]
    })
    if stats.contains(where: \.estimated) {
        print("~ estimated: the store holds over 100,000 messages or dead letters, too many to count on every look")
    }
}
