import Depot
import Foundation

let peekCommand = Command(
    name: "peek",
    summary: "Show a store's next messages in delivery order, without taking them (depot.peek).",
    arguments: [("STORE", "the store's name")],
    options: [
        OptionSpec(name: "limit", short: "n", value: "N", help: "how many, 1 to 10000 (default 10)"),
        OptionSpec(name: "json", help: "print JSON for scripts (with headers and the 200-byte preview)"),
    ],
    notes: """
        STATE is ready, delayed (available later: a delay or a retry) or in_flight (leased to a consumer).
        PREVIEW is the payload's start as text; bytes that are not UTF-8 show escaped (\\000\\377).
        Example: depot peek orders -n 20
        """
) { arguments in
    let store = try arguments.positionals(exactly: 1, usage: "depot peek STORE [-n N] [--json]")[0]
    let limit = try arguments.integer("limit", in: 1...10000) ?? 10
    let messages = try await withDatabase { try await StoreCatalog(pool: $0).peek(store, limit: limit) }
    if arguments.flag("json") { return try printJSON(messages) }
    printTable(["ID", "STATE", "PRIORITY", "ATTEMPTS", "AGE", "AVAILABLE IN", "GROUP", "PREVIEW"], messages.map { message in
        let wait = message.availableAt.timeIntervalSinceNow
        return [message.id.uuidString.lowercased(), message.state, String(message.priority), String(message.attempts),
                age(message.createdAt), wait > 0 ? age(Date().addingTimeInterval(-wait)) : "-",
                cell(message.groupKey, limit: 20), cell(message.preview, limit: 60)]
    })
}
