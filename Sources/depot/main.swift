import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Every verb, in the order `depot --help` lists them.
let commands: [Command] = [
    migrateCommand, storeCommand, statsCommand, storesCommand, peekCommand, messagesCommand, processorsCommand, processorCommand,
    deadLettersCommand, nodesCommand, nodeCommand, echoServerCommand, importSynapseCommand, benchCommand, chaosCommand, fuzzCommand, schemaCommand,
]

private let verbWidth = commands.map(\.name.count).max() ?? 0

let overview = """
    depot — a PostgreSQL-backed store-and-forward message system.

    Usage: depot VERB [arguments] [options]      depot VERB --help for a verb's options

    Verbs:
    \(commands.map { "  \($0.name.padding(toLength: verbWidth, withPad: " ", startingAt: 0)) \($0.summary)" }.joined(separator: "\n"))

    Database: DEPOT_DATABASE_URL (a postgres:// URL or a conninfo string); without it libpq's
    PGHOST, PGPORT, PGUSER, PGPASSWORD and PGDATABASE apply. Behind PgBouncer in transaction mode, also
    DEPOT_DATABASE_POOL_MODE=transaction and, for nodes, DEPOT_LISTEN_DATABASE_URL (a direct connection).

    Exit status: 0 done; 1 the database refused a statement; 64 wrong arguments; 65 bad input data
    (an unknown store, a broken rule); 66 an input file is missing; 69 PostgreSQL unreachable; 70 a bug;
    78 configuration: DEPOT_DATABASE_URL malformed, a node behind a transaction pool without
    DEPOT_LISTEN_DATABASE_URL, DEPOT_HTTP_TOKEN empty or padded, the schema behind.
    """

func runDepot(_ arguments: [String]) async -> Int32 {
    guard let verb = arguments.first, verb != "--help", verb != "-h", verb != "help" else {
        if arguments.count > 1, let command = commands.first(where: { $0.name == arguments[1] }) {
            print(command.help)
        } else {
            print(overview)
        }
        return ExitStatus.success
    }
    if verb == "--version" {
        print("depot 0.1.0")
        return ExitStatus.success
    }
    guard let command = commands.first(where: { $0.name == verb }) else {
        return report(CLIFailure.usage("unknown verb '\(verb)'; run depot --help for the list"))
    }
    do {
        try await command.run(try ParsedArguments(Array(arguments.dropFirst()), for: command))
        return ExitStatus.success
    } catch {
        return report(error)
    }
}

exit(await runDepot(Array(CommandLine.arguments.dropFirst())))
