import Depot
import Foundation

/// Scenario "sql-consumer": what a consumer in another language gets from `depot.claim` and
/// `depot.ack`. A store of 100,000 (20,000 with `--quick`), filled with no preparation, drained by
/// 8 pgbench clients, each in a loop: claim 100 with a lease (one round trip, reading the
/// payloads), then ack the ids it got (a second). Judged against the Swift path: the 8-member
/// drain of the same size measured before it in this run (`drain`, else the cold `burst`).
enum SQLConsumerBench {
    static let store = "bench-sql-consumer"
    static let batch = 100
    static let clients = 8

    static func run(_ context: BenchContext, against swift: BenchFigure?) async throws -> [BenchFigure] {
        let size = context.quick ? 20_000 : 100_000
        try await context.reset(stores: [store])
        try await context.fill(store, count: size)
        context.progress("sql-consumer: \(clients) pgbench clients draining \(BenchTable.integer(Double(size))) through depot.claim and depot.ack, \(batch) at a time")
        // pgbench substitutes variables as text (simple protocol), so the ids come back quoted.
        // Each client runs its share of claims and two more: near the end a claim can find fewer
        // than 100 free (the rest leased to others, about to be acked), and an extra claim on an
        // empty store costs one round trip and acks nothing.
        let perClient = size / (clients * batch) + 2
        let script = """
            SELECT quote_literal(coalesce(array_agg(id)::text, '{}')) AS ids, coalesce(sum(length(payload)), 0) AS bytes
              FROM depot.claim('\(store)', 'pgbench-' || :client_id, \(batch), interval '30 seconds') \\gset
            SELECT depot.ack(:ids::uuid[], 'pgbench-' || :client_id);
            """
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("depot-bench-sql-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let pgbench = BareSQLReference.Pgbench(
            executable: try BareSQLReference.locatePgbench(), environment: try BareSQLReference.pgbenchEnvironment(context.databaseURL),
            folder: folder, seconds: 0)
        let started = ContinuousClock.now
        _ = try await pgbench.run(script: script, key: "sql-consumer", clients: clients, length: ["-t", "\(perClient)"])
        let left = try await context.depth(store)
        let seconds = (ContinuousClock.now - started).benchSeconds
        guard left == 0 else {
            throw BenchFailure("sql-consumer: \(left) of \(size) messages were still in the store after every client ran its \(perClient) claims of up to \(batch)")
        }
        let rate = Double(size) / seconds
        var figure = BenchFigure(scenario: "sql-consumer", measure: "\(BenchTable.integer(Double(size))) msgs, \(clients) clients, claim + ack in SQL", value: rate, unit: "msg/s")
        if let swift, swift.value > 0 {
            figure.referenceKey = "\(swift.scenario), 8 members (Swift)"
            figure.reference = swift.value
            figure.ratio = rate / swift.value
            figure.target = "≥ 80% of the Swift path"
            figure.met = rate / swift.value >= 0.8
        }
        return [figure]
    }
}
