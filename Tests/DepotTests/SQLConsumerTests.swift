import Depot
import Foundation
import Postgres
import Testing
import TestSupport

/// A consumer written in plain psql, through depot.claim, ack, release, extend_lease and
/// dead_letter (migration 0015), with the Swift store's semantics and guards.
@Suite("Consuming from SQL")
struct SQLConsumerTests {
    /// Runs one statement with psql and returns its unaligned, tuples-only output lines.
    static func psql(_ url: String, _ sql: String) async throws -> (status: Int32, lines: [String], error: String) {
        let output = try await runProcess(URL(fileURLWithPath: "/usr/bin/psql"), [url, "-AtXq", "-v", "ON_ERROR_STOP=1", "-c", sql])
        return (output.status, output.stdout.split(separator: "\n").map(String.init), output.stderr)
    }

    @Test("claim, ack, release, lease expiry to another consumer with attempts counted, a lost lease cannot ack, extend, dead-letter, and the guards")
    func psqlConsumer() async throws {
        let cluster = try await Cluster.fresh()
        let url = cluster.url
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let ids = try await cluster.storeTexts("orders", count: 3).map { $0.uuidString.lowercased() }

        // Two claimed, in delivery order, each an attempt.
        let first = try await Self.psql(url, "SELECT id, attempts, convert_from(payload, 'UTF8') FROM depot.claim('orders', 'psql-a', 2, interval '30 seconds') ORDER BY priority DESC, seq")
        #expect(first.status == 0, "\(first.error)")
        #expect(first.lines == ["\(ids[0])|1|m0", "\(ids[1])|1|m1"])
        #expect(try await Self.psql(url, "SELECT depot.ack(ARRAY['\(ids[0])']::uuid[], 'psql-a')").lines == ["1"])
        // Released with an error: claimable again at once by another consumer, its attempts counted.
        #expect(try await Self.psql(url, "SELECT depot.release('\(ids[1])', 'psql-a', interval '0', 'back end busy')").lines == ["t"])
        let again = try await Self.psql(url, "SELECT id, attempts, last_error FROM depot.claim('orders', 'psql-b', 1) ")
        #expect(again.lines == ["\(ids[1])|2|back end busy"])
        // A short lease runs out: another consumer gets the message, and the first can no longer ack or extend it.
        #expect(try await Self.psql(url, "SELECT id FROM depot.claim('orders', 'psql-c', 1, interval '200 milliseconds')").lines == [ids[2]])
        var taken: [String] = []
        #expect(try await eventually(timeout: .seconds(10)) {
            taken = try await Self.psql(url, "SELECT id || '|' || attempts FROM depot.claim('orders', 'psql-d', 1)").lines
            return !taken.isEmpty
        })
        #expect(taken == ["\(ids[2])|2"])
        #expect(try await Self.psql(url, "SELECT depot.ack(ARRAY['\(ids[2])']::uuid[], 'psql-c')").lines == ["0"], "a lost lease cannot ack")
        #expect(try await Self.psql(url, "SELECT depot.extend_lease(ARRAY['\(ids[2])']::uuid[], 'psql-c', interval '1 minute')").lines == ["0"])
        #expect(try await Self.psql(url, "SELECT depot.extend_lease(ARRAY['\(ids[2])']::uuid[], 'psql-d', interval '1 minute')").lines == ["1"])
        // Dead-lettered by its holder, with the reason; gone from the store.
        #expect(try await Self.psql(url, "SELECT depot.dead_letter('\(ids[2])', 'psql-d', 'cannot parse')").lines == ["t"])
        #expect(try await Self.psql(url, "SELECT reason, node, attempts FROM depot.dead_letters WHERE id = '\(ids[2])'").lines == ["cannot parse|psql-d|2"])
        #expect(try await Self.psql(url, "SELECT depot.ack(ARRAY['\(ids[1])']::uuid[], 'psql-b')").lines == ["1"])
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 0)

        // Guards, each naming what is wrong.
        for (sql, expected) in [
            ("SELECT * FROM depot.claim('nope', 'w', 1)", "store \"nope\" is not declared"),
            ("SELECT * FROM depot.claim('orders', 'w', 0)", "limit is 0; it must be between 1 and 10000"),
            ("SELECT * FROM depot.claim('orders', '', 1)", "consumer must be a name of 1 to 200 characters"),
            ("SELECT * FROM depot.claim('orders', 'w', 1, interval '-1 second')", "lease must be longer than 0"),
        ] {
            let refused = try await Self.psql(url, sql)
            #expect(refused.status != 0 && refused.error.contains(expected), "\(sql): \(refused.error)")
        }
    }

    @Test("a claim through SQL walks the claim index on a never-analysed store of 20,000, as the store's own claim does")
    func samePlan() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('big');
            INSERT INTO depot.messages (store, payload) SELECT 'big', '\\x00' FROM generate_series(1, 20000);
            """)
        // auto_explain sends the plan of the statement inside the function to psql as a notice.
        let explained = try await Self.psql(cluster.url, """
            LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;
            SET auto_explain.log_level = notice; SET auto_explain.log_analyze = on; SET auto_explain.log_buffers = on;
            SELECT count(*) FROM depot.claim('big', 'w', 100);
            """)
        #expect(explained.status == 0, "\(explained.error)")
        #expect(explained.lines.last == "100")
        let plan = explained.error
        #expect(plan.contains("Index Scan using messages_claim_order"), "\(plan)")
        #expect(!plan.contains("Sort"), "a sort in the claim's plan: \(plan)")
    }
}
