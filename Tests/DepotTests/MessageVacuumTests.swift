@testable import Depot
import Foundation
import Postgres
import Testing
import TestSupport

/// A node vacuums depot.messages itself once acked rows pile up, and leaves the table to
/// autovacuum when its role may not vacuum it.
@Suite("Vacuum of depot.messages by the node")
struct MessageVacuumTests {
    @Test("dead rows past the threshold: a node runs VACUUM (vacuum_count, which autovacuum does not touch, goes up)")
    func vacuumsPastThreshold() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('acked')")
        _ = try await cluster.storeTexts("acked", count: 3_000)
        // As 3,000 acks would; the statistics flush at once instead of when the backend idles.
        try await cluster.sql("DELETE FROM depot.messages; SELECT pg_stat_force_next_flush();")
        var configuration = Cluster.nodeConfiguration("node-a")
        configuration.vacuumDeadRows = 1_000
        let node = Node(configuration, pool: cluster.pool)
        let task = Task { try await node.run() }
        let vacuumed = try await eventually(timeout: .seconds(30), every: .milliseconds(200)) {
            try await cluster.integer("SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = 'depot.messages'::regclass") > 0
        }
        await node.stop()
        try await task.value
        #expect(vacuumed)
        #expect(try await cluster.integer("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'depot.messages'::regclass") < 3_000)
    }

    @Test("the threshold: the minimum for a small table, a twentieth of the live rows for a large one")
    func threshold() async throws {
        let vacuum = MessageVacuum(minimumDeadRows: 10_000, pool: try await TestDatabase.shared())
        #expect(vacuum.threshold(live: 0) == 10_000)
        #expect(vacuum.threshold(live: 100_000) == 10_000)
        #expect(vacuum.threshold(live: 1_000_000) == 50_000)
    }

    @Test("a role that does not own depot.messages may not vacuum it; the owner may")
    func roleThatMayNotVacuum() async throws {
        let cluster = try await Cluster.fresh()
        let role = "reader_\(UUID().uuidString.prefix(8).lowercased())"
        try await cluster.sql("""
            CREATE ROLE \(role) LOGIN PASSWORD 'secret-\(role)';
            GRANT USAGE ON SCHEMA depot TO \(role);
            """)
        guard var components = URLComponents(string: cluster.url) else { throw URLError(.badURL) }
        components.user = role
        components.password = "secret-\(role)"
        let pool = ConnectionPool(ConnectionConfiguration(components.string!), maximumConnections: 1)
        let owner = MessageVacuum(minimumDeadRows: 1, pool: cluster.pool)
        let reader = MessageVacuum(minimumDeadRows: 1, pool: pool)
        #expect(try await owner.mayVacuum())
        #expect(try await !reader.mayVacuum())
        await pool.close()
        try await cluster.sql("DROP OWNED BY \(role); DROP ROLE \(role)")
    }
}
