import Depot
import Foundation

let deadLettersCommand = Command(
    name: "dead-letters",
    summary: "List dead letters, resend them into their stores, or purge them.",
    arguments: [("[list|resend|purge]", "without a verb: list (newest first)")],
    options: [
        OptionSpec(name: "store", value: "STORE", help: "only this store's dead letters"),
        OptionSpec(name: "id", value: "ID", repeatable: true, help: "only this dead letter (its message id)"),
        OptionSpec(name: "limit", short: "n", value: "N", help: "with list: at most N, 1 to 10000 (default 100)"),
        OptionSpec(name: "all", help: "with purge: every dead letter of every store (purge needs --store, --id or --all)"),
        OptionSpec(name: "json", help: "with list: print JSON for scripts"),
    ],
    notes: """
        resend moves them back into their stores (depot.resend_dead_letters): same id, attempts 0,
        behind what already waits. purge deletes them for good (depot.purge_dead_letters).
        Examples: depot dead-letters --store orders     depot dead-letters resend --store orders
                  depot dead-letters purge --id 0b6c…  --id 7f21…
        """
) { arguments in
    let verb = arguments.positional.first ?? "list"
    let usage = "depot dead-letters [list|resend|purge] [--store STORE] [--id ID]…"
    _ = try arguments.positionals(exactly: arguments.positional.isEmpty ? 0 : 1, usage: usage)
    let store = arguments.value("store")
    let ids = try arguments.all("id").map { text in
        guard let id = UUID(uuidString: text) else {
            throw CLIFailure.usage("--id must be a message id such as 0b6c7e4e-8a56-4d9b-9c1e-2f0a6d1c3b55, got '\(text)'")
        }
        return id
    }
    if verb != "list", arguments.flag("json") || arguments.value("limit") != nil {
        throw CLIFailure.usage("--json and --limit go with list only; usage: \(usage)")
    }
    if verb != "purge", arguments.flag("all") { throw CLIFailure.usage("--all goes with purge only; usage: \(usage)") }
    switch verb {
    case "list":
        let limit = try arguments.integer("limit", in: 1...10000) ?? 100
        let letters = try await withDatabase { try await DeadLetterAdmin(pool: $0).list(store: store, ids: ids, limit: limit) }
        if arguments.flag("json") { return try printJSON(letters) }
        printTable(["ID", "STORE", "REASON", "STATUS", "PROCESSOR", "NODE", "ATTEMPTS", "DEAD AT"], letters.map { letter in
            [letter.id.uuidString.lowercased(), letter.store, cell(letter.reason, limit: 50), letter.statusCode.map(String.init) ?? "-",
             cell(letter.processor, limit: 30), cell(letter.node, limit: 30), String(letter.attempts), timestamp(letter.deadAt)]
        })
    case "resend":
        let moved = try await withDatabase { try await DeadLetterAdmin(pool: $0).resend(store: store, ids: ids) }
        print("resent \(moved) dead letter\(moved == 1 ? "" : "s")")
        if !ids.isEmpty, moved < ids.count { warnMissing(ids.count - moved) }
    case "purge":
        guard store != nil || !ids.isEmpty || arguments.flag("all") else {
            throw CLIFailure.usage("purge deletes for good: name --store STORE, --id ID, or --all for every dead letter")
        }
        let purged = try await withDatabase { try await DeadLetterAdmin(pool: $0).purge(store: store, ids: ids) }
        print("purged \(purged) dead letter\(purged == 1 ? "" : "s")")
        if !ids.isEmpty, purged < ids.count { warnMissing(ids.count - purged) }
    default:
        throw CLIFailure.usage("unknown dead-letters verb '\(verb)'; use list, resend or purge")
    }
}

/// Says on standard error that some --id named nothing (the count on standard output stays exact).
private func warnMissing(_ missing: Int) {
    FileHandle.standardError.write(Data("depot: \(missing) of the given ids matched no dead letter (see depot dead-letters list)\n".utf8))
}
