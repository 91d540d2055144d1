import Depot
import Foundation

/// Scenario: a node drains a filled journal (its failover store) back into PostgreSQL, against
/// the batched enqueue of the same messages measured just before, so both see the same machine.
enum JournalDrainBench {
    static let primary = "bench-journal-primary"
    static let journal = "bench-journal"

    static func run(_ context: BenchContext) async throws -> [BenchFigure] {
        let count = context.quick ? 20_000 : 100_000
        let seconds = context.seconds(full: 10, quick: 2)
        try await context.reset(stores: [])
        try await context.pool.query("DELETE FROM depot.stores WHERE name = \(primary)")
        try await context.pool.query("DELETE FROM depot.stores WHERE name = \(journal)")
        try await context.pool.query("INSERT INTO depot.stores (name, kind) VALUES (\(journal), 'journal')")
        try await context.pool.query("""
            INSERT INTO depot.stores (name, failover_store, guaranteed_delivery) VALUES (\(primary), \(journal), true)
            """)
        let payload = Data(repeating: UInt8(ascii: "x"), count: 100)

        context.progress("journal: batched enqueue into PostgreSQL for comparison (batches of 100, \(seconds) s)")
        let target = PostgresStore(name: primary, pool: context.pool)
        let batch = (0..<100).map { _ in OutgoingMessage(payload: payload) }
        let enqueueRate = try await EnqueueBench.loop(seconds: seconds, workers: 1) { try await target.store(batch).count }
        try await context.pool.query("DELETE FROM depot.messages WHERE store = \(primary)")

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("depot-bench-journal-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: folder) }
        context.progress("journal: filling a journal with \(count) messages")
        let filling = try JournalStore(name: journal, folder: folder)
        for _ in 0..<(count / 1000) {
            _ = try await filling.store((0..<1000).map { _ in OutgoingMessage(payload: payload) })
        }
        await filling.close()

        context.progress("journal: a node drains it into PostgreSQL")
        let node = try await context.startNode("bench-journal", ["--journal", folder.path])
        defer { Task { await node.stop() } }
        // From the first message to arrive, so the node's start is not counted as drain time.
        let waitedFrom = ContinuousClock.now
        while try await context.pool.query("SELECT 1 FROM depot.messages WHERE store = \(primary) LIMIT 1").first == nil {
            guard ContinuousClock.now - waitedFrom < .seconds(30) else { throw BenchFailure("the node drained nothing in 30 s: \(node.errorTail)") }
            try await Task.sleep(for: .milliseconds(5))
        }
        let started = ContinuousClock.now
        while try await context.depth(primary) < count {
            guard ContinuousClock.now - started < .seconds(600) else {
                throw BenchFailure("the journal drained \(try await context.depth(primary)) of \(count) in 600 s: \(node.errorTail)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let rate = Double(count) / (ContinuousClock.now - started).benchSeconds
        await node.stop()
        let key = "batched enqueue, this run"
        return [
            .rate("journal", "batched enqueue (batches of 100)", enqueueRate, against: nil, references: [:]),
            .rate("journal", "journal of \(BenchTable.integer(Double(count))) drained into PostgreSQL", rate,
                  against: key, references: [key: enqueueRate], minimumRatio: 0.5),
        ]
    }
}
