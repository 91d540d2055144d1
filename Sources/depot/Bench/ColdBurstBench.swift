import Depot
import Foundation
import Postgres

/// Scenario "burst": what a new user sees. A fresh database (migrated, `depot.messages` never
/// analysed), a node running a sampling processor with the `drop` handler and idle, then a
/// burst of 100,000 messages (20,000 with `--quick`) committed at once; the time from the
/// commit to an empty store, with 2 and 8 members. Nothing is vacuumed, analysed or
/// checkpointed on the way.
enum ColdBurstBench {
    static let store = "bench-burst"
    static let batch = 100

    static func run(_ context: BenchContext) async throws -> [BenchFigure] {
        let size = context.quick ? 20_000 : 100_000
        try await context.references.measure(["claim-delete-100/clients-8"])
        var figures: [BenchFigure] = []
        for members in [2, 8] {
            let rate = try await measure(context, messages: size, members: members)
            figures.append(.rate("burst", "\(BenchTable.integer(Double(size))) msgs, cold, \(members) members", rate,
                                 against: "claim-delete-100/clients-8", references: context.references.values,
                                 minimumRatio: members == 8 ? 0.6 : nil, minimumRate: members == 8 ? 20_000 : nil))
        }
        return figures
    }

    /// One burst on a database of its own, dropped afterwards.
    static func measure(_ context: BenchContext, messages: Int, members: Int) async throws -> Double {
        let fresh = try await context.freshDatabase()
        var node: BenchProcess?
        do {
            try await fresh.reset(stores: [store])
            try await fresh.pool.query("""
                INSERT INTO depot.processors (name, kind, store, handler, interval_ms, concurrency, member_count, is_active)
                VALUES ('bench-burst', 'sampling', \(store), 'drop', 0, \(batch), \(members), true)
                """)
            node = try await fresh.startNode("bench-burst-\(members)")
            // Members start, find the store empty and wait for the insert's NOTIFY.
            try await Task.sleep(for: .seconds(1))
            let payload = Data(repeating: UInt8(ascii: "x"), count: 100)
            let burst = (0..<messages).map { _ in OutgoingMessage(payload: payload, contentType: "text/plain") }
            context.progress("burst: \(messages) messages into an idle node, \(members) members, fresh database")
            // One call, one COPY, one commit; the clock starts when the commit is answered.
            _ = try await PostgresStore(name: store, pool: fresh.pool).store(burst)
            let seconds = try await fresh.drained(store, from: .now, timeout: .seconds(600))
            await node?.stop()
            try await fresh.dropDatabase(on: context)
            return Double(messages) / seconds
        } catch {
            await node?.stop()
            try? await fresh.dropDatabase(on: context)
            throw error
        }
    }
}
