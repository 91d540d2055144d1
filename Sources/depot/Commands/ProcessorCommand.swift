import Depot
import Foundation

let processorCommand = Command(
    name: "processor",
    summary: "Activate or deactivate a processor on every node (depot.activate_processor / deactivate_processor).",
    arguments: [("activate|deactivate", "what to do"), ("NAME", "the processor's name (see depot processors)")],
    options: [OptionSpec(name: "reason", value: "TEXT", help: "with deactivate: why, for operators (default \"deactivated by an operator\")")],
    notes: """
        Nodes follow within a second or two: deactivated, they finish or release what they hold;
        activated, they start it with a fresh round of delivery attempts.
        Example: depot processor deactivate billing-forwarder --reason "billing is down for maintenance"
        """
) { arguments in
    let usage = "depot processor activate|deactivate NAME [--reason TEXT]"
    let positional = try arguments.positionals(exactly: 2, usage: usage)
    let (verb, name) = (positional[0], positional[1])
    switch verb {
    case "activate":
        if arguments.value("reason") != nil { throw CLIFailure.usage("--reason goes with deactivate only; usage: \(usage)") }
        let changed = try await withDatabase { try await ProcessorAdmin(pool: $0).activate(name) }
        print(changed ? "activated processor \(name)" : "processor \(name) was already active")
    case "deactivate":
        let reason = arguments.value("reason")
        let changed = try await withDatabase { try await ProcessorAdmin(pool: $0).deactivate(name, reason: reason) }
        print(changed ? "deactivated processor \(name)" : "processor \(name) was already inactive; its reason is unchanged")
    default:
        throw CLIFailure.usage("unknown processor verb '\(verb)'; usage: \(usage)")
    }
}
