import Depot
import DepotHTTP
import Foundation
import Postgres

let chaosCommand = Command(
    name: "chaos",
    summary: "Prove the delivery promise: nodes killed with -9 and PostgreSQL crashed while producers store; count what was lost.",
    options: [
        OptionSpec(name: "nodes", value: "N", help: "depot node --http processes to run (default 3)"),
        OptionSpec(name: "duration", value: "DURATION", help: "how long producers store while faults strike (default 60s)"),
        OptionSpec(name: "http-clients", value: "N", help: "producers posting singles and NDJSON batches of 64–120 to random nodes (default 12)"),
        OptionSpec(name: "library-producers", value: "N", help: "producers storing through the Swift Producer in this process (default 2)"),
        OptionSpec(name: "rate", value: "N", help: "messages per second all producers store together, at most (default 500)"),
        OptionSpec(name: "kill-every", value: "DURATION", help: "kill -9 a random node and restart it about this often (default 3s; 0s never)"),
        OptionSpec(name: "crashes", value: "N", help: "times to crash PostgreSQL, at random moments (default 4; needs --crash-command and --restart-command)"),
        OptionSpec(name: "crash-command", value: "SHELL", help: "crashes PostgreSQL, e.g. 'scripts/pg crash DIR' (pg_ctl -m immediate stop)"),
        OptionSpec(name: "restart-command", value: "SHELL", help: "starts it again and returns once it answers, e.g. 'scripts/pg start DIR PORT'"),
        OptionSpec(name: "lease", value: "DURATION", help: "the nodes' lease (default 2s)"),
        OptionSpec(name: "drain-timeout", value: "DURATION", help: "how long to wait after the faults for every accepted message to arrive (default 120s)"),
        OptionSpec(name: "json", help: "print the figures as JSON"),
    ],
    notes: """
        It declares stores chaos-in (failover chaos-journal, a journal, with guaranteed delivery)
        and chaos-direct, three back ends in this process, and forwarding processors from both
        stores to them; HTTP producers store into chaos-in, library producers into chaos-direct.
        A request that fails without an answer is counted and not retried. Exit 0 when every
        message answered 202 (or given a receipt) reached a back end; 1 when any was lost.
        It deletes the chaos-* rows it finds and refuses a database with other stores: run
        scripts/chaos, which starts a throwaway PostgreSQL and a release build.
        """
) { arguments in
    _ = try arguments.positionals(exactly: 0, usage: "depot chaos [--nodes N] [--duration D] [--crashes N --crash-command C --restart-command C]")
    let nodeCount = try arguments.integer("nodes", in: 1...16) ?? 3
    let duration = try arguments.duration("duration") ?? .seconds(60)
    let httpClients = try arguments.integer("http-clients", in: 0...256) ?? 12
    let libraryProducers = try arguments.integer("library-producers", in: 0...64) ?? 2
    let rate = try arguments.integer("rate", in: 1...1_000_000) ?? 500
    let killEvery = try arguments.duration("kill-every") ?? .seconds(3)
    let crashes = try arguments.integer("crashes", in: 0...10_000) ?? 4
    let lease = arguments.value("lease") ?? "2s"
    _ = try arguments.duration("lease")
    let drainTimeout = try arguments.duration("drain-timeout") ?? .seconds(120)
    let crashCommand = arguments.value("crash-command"), restartCommand = arguments.value("restart-command")
    if crashes > 0, crashCommand == nil || restartCommand == nil {
        throw CLIFailure.usage("--crashes \(crashes) needs --crash-command and --restart-command (scripts/chaos gives both), or --crashes 0")
    }
    guard let url = ProcessInfo.processInfo.environment["DEPOT_DATABASE_URL"], url.hasPrefix("postgres") else {
        throw CLIFailure.usage("depot chaos needs DEPOT_DATABASE_URL set to a postgres:// URL of a throwaway database (scripts/chaos starts one for you)")
    }
    let progress: @Sendable (String) -> Void = { FileHandle.standardError.write(Data("chaos: \($0)\n".utf8)) }

    let pool = ConnectionPool(.fromEnvironment(), maximumConnections: 8)
    defer { Task { await pool.close() } }
    _ = try await pool.withConnection { try await Migrator().migrate(on: $0) }
    try await refuseDatabaseInUse(pool, verb: "chaos", deleting: "its chaos-* stores, processors, endpoints and their messages", script: "scripts/chaos")

    let ledger = ChaosLedger()
    let backEnds = try ChaosBackEnds.start(count: 3, ledger: ledger)
    defer { backEnds.stop() }
    try await ChaosSetup.declare(on: pool, backEnds: backEnds.urls)

    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("depot-chaos-\(UUID().uuidString.prefix(8))")
    defer { try? FileManager.default.removeItem(at: folder) }
    let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
    let nodes = try ChaosNodes(count: nodeCount, binary: binary, databaseURL: url, folder: folder, lease: lease)
    try await nodes.waitUntilListening(timeout: .seconds(30))
    progress("\(nodeCount) nodes on ports \(nodes.ports.map(String.init).joined(separator: ", ")); storing for \(duration) "
             + "with \(httpClients) HTTP and \(libraryProducers) library producers at \(rate) msg/s, a kill every \(killEvery), \(crashes) crashes")

    let producers = ChaosProducers(ledger: ledger, ratePerProducer: Double(rate) / Double(max(1, httpClients + libraryProducers)))
    let faults = ChaosFaults(ledger: ledger, nodes: nodes, nodeCount: nodeCount)
    let libraryPool = ConnectionPool(.fromEnvironment(), maximumConnections: 4)
    let producer = Producer(pool: libraryPool, stores: StoreDirectory(pool: libraryPool))
    let start = ContinuousClock.now
    let deadline = start + duration
    let client = HTTPClient(maximumIdlePerHost: 256)
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<httpClients {
            group.addTask { await producers.runHTTP(ports: nodes.ports, store: ChaosSetup.httpStore, client: client) }
        }
        for _ in 0..<libraryProducers {
            group.addTask { await producers.runLibrary(producer: producer, store: ChaosSetup.libraryStore) }
        }
        group.addTask {
            if killEvery > .zero { try await faults.killNodes(every: killEvery, until: deadline) }
        }
        group.addTask {
            try await faults.crashDatabase(count: crashes, from: start, until: deadline,
                                           crash: crashCommand ?? "", restart: restartCommand ?? "")
            if deadline > .now { try await Task.sleep(until: deadline) }
            producers.finish()
        }
        try await group.waitForAll()
    }
    progress("stopped storing: \(ledger.acceptedCount) accepted; waiting up to \(drainTimeout) for them to reach the back ends")

    let drainDeadline = ContinuousClock.now + drainTimeout
    while !ledger.undelivered().isEmpty, ContinuousClock.now < drainDeadline {
        try await Task.sleep(for: .milliseconds(200))
    }
    await nodes.stopAll()
    await libraryPool.close()
    // What never arrived: still waiting in PostgreSQL (slow, not lost), or gone.
    let undelivered = ledger.undelivered()
    let waiting = try await ChaosSetup.storedIds(among: undelivered, on: pool)
        .union(try await ChaosSetup.journalledIds(among: undelivered, folders: nodes.journals))
    let lost = undelivered.filter { !waiting.contains($0) }
    let summary = ledger.summary(lost: lost)
    if arguments.flag("json") {
        try printJSON(summary)
    } else {
        ChaosReportText.print(summary, stillWaiting: waiting.count)
    }
    guard lost.isEmpty, waiting.isEmpty else {
        throw ChaosLoss(lost: lost.count, waiting: waiting.count)
    }
}

/// A chaos run that lost messages, or left some undelivered: exit 1.
struct ChaosLoss: Error, CustomStringConvertible {
    let lost: Int
    let waiting: Int
    var description: String {
        "\(lost) accepted messages were lost and \(waiting) were still waiting in PostgreSQL or a journal after the drain timeout"
    }
}
