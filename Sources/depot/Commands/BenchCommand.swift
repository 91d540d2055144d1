import Depot
import Foundation
import Postgres

/// Scenarios that take a figure apart rather than judge one: a run without `--only` leaves them out.
private let diagnosticScenarios: Set = ["enqueue-parts"]
/// Every scenario `--only` can name, in the order a run takes them.
private let scenarioNames = ["enqueue", "drain", "latency", "forwarding", "burst", "mixed", "sql-consumer", "groups", "backlog", "journal", "soak", "enqueue-parts"]

let benchCommand = Command(
    name: "bench",
    summary: "Measure Depot on this machine beside the bare SQL of the same cycle (pgbench) and print the figures.",
    options: [
        OptionSpec(name: "quick", help: "short runs and small stores (a smoke test: about 4 minutes instead of 20)"),
        OptionSpec(name: "only", value: "LIST", help: "run only these scenarios, comma-separated: \(scenarioNames.joined(separator: ","))"),
        OptionSpec(name: "reference-seconds", value: "N", help: "seconds per bare-SQL reference run (default 10; 3 with --quick; 0 skips the reference)"),
        OptionSpec(name: "json", help: "print the report as JSON for scripts (progress still goes to standard error)"),
    ],
    notes: """
        It deletes every message, processor and endpoint in the database it runs against, so it
        refuses a database holding stores of its own: point DEPOT_DATABASE_URL at a throwaway
        database, or run scripts/bench, which starts one, builds a release binary and runs this.
        Nodes and the echo back end run as their own processes; their CPU and memory are read from /proc.
        """
) { arguments in
    _ = try arguments.positionals(exactly: 0, usage: "depot bench [--quick] [--only LIST] [--json]")
    let quick = arguments.flag("quick")
    let only = try arguments.value("only").map(parseScenarios) ?? scenarioNames.filter { !diagnosticScenarios.contains($0) }
    let referenceSeconds = try arguments.integer("reference-seconds", in: 0...600) ?? (quick ? 3 : 10)
    let configuration = ConnectionConfiguration.fromEnvironment()
    guard let url = ProcessInfo.processInfo.environment["DEPOT_DATABASE_URL"], url.hasPrefix("postgres") else {
        throw CLIFailure.usage("depot bench needs DEPOT_DATABASE_URL set to a postgres:// URL of a throwaway database (scripts/bench starts one for you)")
    }
    let pool = ConnectionPool(configuration, maximumConnections: 12)
    defer { Task { await pool.close() } }
    _ = try await pool.withConnection { try await Migrator().migrate(on: $0) }
    try await refuseDatabaseInUse(pool, verb: "bench", deleting: "every message, processor and endpoint", script: "scripts/bench")

    let progress: @Sendable (String) -> Void = { FileHandle.standardError.write(Data("bench: \($0)\n".utf8)) }
    let references = ReferenceBook(databaseURL: url, seconds: referenceSeconds, progress: progress)
    let context = BenchContext(
        databaseURL: url, pool: pool, binary: URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path,
        quick: quick, references: references, serverCPU: try await ServerCPU.find(pool))
    var figures: [BenchFigure] = []
    for scenario in only {
        switch scenario {
        case "enqueue": figures += try await EnqueueBench.run(context)
        case "drain": figures += try await DrainBench.run(context)
        case "latency": figures += try await LatencyBench.run(context)
        case "forwarding": figures += try await ForwardingBench.run(context)
        case "burst": figures += try await ColdBurstBench.run(context)
        case "mixed": figures += try await MixedLoadBench.run(context)
        case "sql-consumer":
            let swift = figures.first { $0.scenario == "drain" && $0.measure.hasSuffix("8 members") }
                ?? figures.first { $0.scenario == "burst" && $0.measure.hasSuffix("8 members") }
            figures += try await SQLConsumerBench.run(context, against: swift)
        case "groups":
            let plain = figures.first { $0.scenario == "enqueue" && $0.measure == "batches of 100" }
            figures += try await GroupsBench.run(context, plainBatches: plain)
        case "backlog":
            // Judged against the cold burst's rate when it ran, else the small-store drain's.
            let small = figures.first { $0.scenario == "burst" && $0.measure.hasSuffix("8 members") }
                ?? figures.first { $0.scenario == "drain" && $0.measure.hasSuffix("8 members") }
            figures += try await DrainBench.backlog(context, against: small)
        case "journal": figures += try await JournalDrainBench.run(context)
        case "enqueue-parts": figures += try await SingleProducerParts.run(context)
        default: figures += try await SoakBench.run(context)
        }
    }
    try await context.reset(stores: [])
    let report = BenchReport(date: Date(), machine: machineDescription(), postgres: try await serverVersion(pool),
                             settings: try await serverSettings(pool), quick: quick, references: references.figures, figures: figures)
    if arguments.flag("json") { return try printJSON(report) }
    BenchTable.print(report)
}

private func parseScenarios(_ text: String) throws -> [String] {
    let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    if let unknown = names.first(where: { !scenarioNames.contains($0) }) {
        throw CLIFailure.usage("--only: no scenario \"\(unknown)\"; the scenarios are \(scenarioNames.joined(separator: ", "))")
    }
    return scenarioNames.filter(names.contains)
}

/// The benchmark deletes messages, processors and endpoints: only on a database with no stores
/// but its own.
private func serverVersion(_ pool: ConnectionPool) async throws -> String {
    try await pool.query("SELECT current_setting('server_version')").first?.decode(at: 0) ?? "?"
}

/// The settings that decide commit and vacuum speed, as the server reports them.
private func serverSettings(_ pool: ConnectionPool) async throws -> [String: String] {
    let names = ["fsync", "synchronous_commit", "shared_buffers", "wal_level", "max_wal_size", "autovacuum"]
    var settings: [String: String] = [:]
    for name in names {
        settings[name] = try await pool.query("SELECT current_setting(\(name))").first?.decode(at: 0) ?? "?"
    }
    return settings
}

/// CPU model and count, memory, kernel: from /proc.
private func machineDescription() -> String {
    let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }?
        .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
    let memory = ((try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? "").split(separator: "\n")
        .first { $0.hasPrefix("MemTotal:") }?.split(separator: " ").dropFirst().first.flatMap { Double($0) }
        .map { String(format: "%.0f GiB", $0 / 1_048_576) } ?? "? GiB"
    let kernel = ((try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
    return "\(ProcessInfo.processInfo.activeProcessorCount) × \(model), \(memory), Linux \(kernel)"
}
