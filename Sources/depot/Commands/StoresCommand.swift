import Depot
import Foundation

let storesCommand = Command(
    name: "stores",
    summary: "List the declared stores, or declare (add) and remove one.",
    arguments: [("[add|remove NAME]", "without a verb: list the stores")],
    options: [
        OptionSpec(name: "kind", value: "KIND", help: "with add: postgres (default), memory or journal"),
        OptionSpec(name: "failover-store", value: "NAME", help: "with add: where messages go when this store cannot take them"),
        OptionSpec(name: "guaranteed-delivery", help: "with add: fall back to the failover store when a write fails"),
        OptionSpec(name: "description", value: "TEXT", help: "with add: a note for operators"),
        OptionSpec(name: "json", help: "print JSON for scripts"),
    ],
    notes: "Examples: depot stores add orders     depot stores remove orders     depot stores --json"
) { arguments in
    switch arguments.positional.first {
    case nil:
        let stores = try await withDatabase { try await StoreCatalog(pool: $0).list() }
        if arguments.flag("json") { return try printJSON(stores) }
        printTable(["NAME", "KIND", "FAILOVER STORE", "GUARANTEED DELIVERY", "DESCRIPTION"], stores.map {
            [$0.name, $0.kind, $0.failoverStore ?? "-", $0.guaranteedDelivery ? "yes" : "no", $0.description ?? ""]
        })
    case "add":
        let name = try arguments.positionals(exactly: 2, usage: "depot stores add NAME [options]")[1]
        let definition = StoreDefinition(
            name: name, kind: arguments.value("kind") ?? "postgres", failoverStore: arguments.value("failover-store"),
            guaranteedDelivery: arguments.flag("guaranteed-delivery"), description: arguments.value("description"))
        try await withDatabase { try await StoreCatalog(pool: $0).declare(definition) }
        print("declared store \(name)")
    case "remove":
        let name = try arguments.positionals(exactly: 2, usage: "depot stores remove NAME")[1]
        let removed = try await withDatabase { try await StoreCatalog(pool: $0).remove(name) }
        guard removed else { throw CLIFailure.data("store \"\(name)\" does not exist; see depot stores") }
        print("removed store \(name)")
    case let other?:
        throw CLIFailure.usage("unknown stores verb '\(other)'; use add or remove, or no verb to list")
    }
}
