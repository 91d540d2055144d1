import Depot
import Foundation

let statsCommand = Command(
    name: "stats",
    summary: "Show every store's ready, delayed, in-flight and dead-lettered messages (depot.store_stats).",
    options: [OptionSpec(name: "json", help: "print JSON for scripts")]
) { arguments in
    _ = try arguments.positionals(exactly: 0, usage: "depot stats [--json]")
    let stats = try await withDatabase { try await StoreCatalog(pool: $0).statistics() }
    if arguments.flag("json") { return try printJSON(stats) }
    printTable(["STORE", "KIND", "READY", "DELAYED", "IN FLIGHT", "DEAD", "OLDEST READY"], stats.map { row in
        [row.store, row.kind, String(row.ready), String(row.delayed), String(row.inFlight), String(row.deadLetters),
         row.oldestReadyAgeSeconds.map { String(format: "%.1fs", $0) } ?? "-"]
    })
}
