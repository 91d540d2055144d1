import Depot
import Foundation
import Postgres
import Testing
import TestSupport

@Suite("The claim's plan")
struct ClaimPlanTests {
    /// PostgreSQL plans a prepared statement afresh on every call for as long as its generic plan
    /// looks dearer than the plans made for the values given; a claim whose generic plan is bad
    /// (a LIMIT it has to guess) is planned on every call. pg_prepared_statements counts both.
    @Test("a claim and an ack-and-claim are planned once per connection, not on every call")
    func claimsUseTheGenericPlan() async throws {
        // A database of its own, its table analysed: the plans are chosen by the statistics of
        // a store that is worth planning for. One connection, so the statements and the view
        // belong to the same session.
        let pool = try await TestDatabase.migrated(maximumConnections: 1)
        defer { Task { await pool.close() } }
        let name = try await TestDatabase.declareStore(on: pool)
        let store = PostgresStore(name: name, pool: pool)
        for _ in 0..<20 { _ = try await store.store((0..<1000).map { OutgoingMessage(text: "m\($0)") }) }
        try await pool.query("ANALYZE depot.messages")

        var delivered: [UUID] = []
        for _ in 0..<10 {
            delivered = try await store.claim(limit: 10, consumer: "plan", lease: .seconds(60)).map(\.id)
            #expect(delivered.count == 10)
        }
        for _ in 0..<10 {
            delivered = try await store.ackAndClaim(delivered, limit: 10, consumer: "plan", lease: .seconds(60)).map(\.id)
            #expect(delivered.count == 10)
        }

        let plans = try await pool.query("""
            SELECT statement LIKE '%acked%' AS acking, generic_plans, custom_plans
            FROM pg_prepared_statements
            WHERE statement LIKE '%FOR UPDATE SKIP LOCKED%' AND statement NOT LIKE '%pg_prepared_statements%'
            """).map { (try $0.decode("acking", as: Bool.self), try $0.decode("generic_plans", as: Int.self),
                        try $0.decode("custom_plans", as: Int.self)) }
        #expect(plans.count == 2, "one prepared claim and one prepared ack-and-claim: \(plans)")
        for (acking, generic, custom) in plans {
            // PostgreSQL tries five custom plans before it weighs the generic one.
            #expect(generic >= 5 && custom <= 5, "\(acking ? "ack-and-claim" : "claim"): \(generic) generic plans, \(custom) custom")
        }
        // 200 claimed; each ack-and-claim acked the 10 claimed before it: 19,900 left, 100 leased.
        let counts = try await store.counts()
        #expect(counts.ready == 19_800 && counts.inFlight == 100, "\(counts)")
    }

    @Test("an ack-and-claim never hands back a message it is acking, even one whose lease ran out")
    func ackedMessageIsNotClaimedAgain() async throws {
        let pool = try await TestDatabase.shared()
        let name = try await TestDatabase.declareStore(on: pool)
        let store = PostgresStore(name: name, pool: pool)
        _ = try await store.store((0..<3).map { OutgoingMessage(text: "m\($0)") })
        // A lease of no time at all: expired by the next statement.
        let first = try await store.claim(limit: 3, consumer: "late", lease: .zero)
        #expect(first.count == 3)
        let next = try await store.ackAndClaim(first.map(\.id), limit: 3, consumer: "late", lease: .seconds(60))
        #expect(next.isEmpty, "acked messages came back: \(next.map(\.id))")
        #expect(try await store.counts() == StoreCounts())
    }
}
