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
    notes: """
        The list shows each store's depth (depot stats has the details; ~ marks an estimate); --json prints the definitions.
        Examples: depot stores add orders     depot stores remove orders     depot stores --json
        """
) { arguments in
    switch arguments.positional.first {
    case nil:
        if arguments.flag("json") {
            return try printJSON(try await withDatabase { try await StoreCatalog(pool: $0).list() })
        }
        let (stores, stats) = try await withDatabase { pool in
            let catalog = StoreCatalog(pool: pool)
            return (try await catalog.list(), try await catalog.statistics())
        }
        let statsByStore = Dictionary(stats.map { ($0.store, $0) }, uniquingKeysWith: { first, _ in first })
        printTable(["NAME", "KIND", "READY", "IN FLIGHT", "DEAD", "FAILOVER STORE", "GUARANTEED DELIVERY", "DESCRIPTION"], stores.map {
            let row = statsByStore[$0.name]
            let depth = { (value: KeyPath<StoreStatistics, Int>) in row.map { quantity($0[keyPath: value], estimated: $0.estimated) } ?? "-" }
            return [$0.name, $0.kind.rawValue, depth(\.ready), depth(\.inFlight), depth(\.deadLetters), $0.failoverStore ?? "-",
                    $0.guaranteedDelivery ? "yes" : "no", cell($0.description, limit: 60)]
        })
    case "add":
        let name = try arguments.positionals(exactly: 2, usage: "depot stores add NAME [options]")[1]
        let kindText = arguments.value("kind") ?? StoreKind.postgres.rawValue
        guard let kind = StoreKind(rawValue: kindText) else {
            throw CLIFailure.usage("--kind '\(kindText)' is not a store kind; use \(StoreKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let definition = StoreDefinition(
            name: name, kind: kind, failoverStore: arguments.value("failover-store"),
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
