@testable import Depot
import Foundation
import Postgres
import Testing
import TestSupport

/// Nodes prune what outlives its use, for as long as depot.settings says (migrations 0009 and 0022).
@Suite("Pruning expired idempotency keys, dead nodes and sequence gaps")
struct RetentionPruningTests {
    @Test("expired keys of delivered messages go; a key whose message waits, a recent key, and a retry within the retention stay")
    func idempotencyKeys() async throws {
        let cluster = try await Cluster.fresh()
        let store = PostgresStore(name: try await TestDatabase.declareStore(on: cluster.pool), pool: cluster.pool)
        func keyed(_ key: String) -> OutgoingMessage {
            var message = OutgoingMessage(text: key)
            message.idempotencyKey = key
            return message
        }
        let stored = try await store.store(["old-delivered", "old-waiting", "new-delivered"].map(keyed))
        try await cluster.sql("""
            UPDATE depot.idempotency_keys SET created_at = now() - interval '8 days' WHERE key LIKE 'old-%';
            DELETE FROM depot.messages WHERE id IN ('\(stored[0].id)', '\(stored[2].id)');
            """)
        let pruned = try await RetentionPruning(pool: cluster.pool, batch: 1).runOnce()
        #expect(pruned.idempotencyKeys == 1)
        let left = try await cluster.rows("SELECT key FROM depot.idempotency_keys ORDER BY key").map { try $0.decode(at: 0, as: String.self) }
        #expect(left == ["new-delivered", "old-waiting"])
        // Within the retention a retry stores nothing; past it, the key is free again.
        #expect(try await store.store([keyed("new-delivered")])[0].created == false)
        #expect(try await store.store([keyed("old-delivered")])[0].created == true)

        // The retention is a setting: one day keeps nothing older than a day.
        try await cluster.sql("""
            UPDATE depot.settings SET idempotency_key_retention = interval '1 day';
            UPDATE depot.idempotency_keys SET created_at = now() - interval '2 days' WHERE key = 'new-delivered';
            """)
        #expect(try await RetentionPruning(pool: cluster.pool).runOnce().idempotencyKeys == 1)
        let refused = await #expect(throws: PostgresError.self) {
            try await cluster.sql("UPDATE depot.settings SET idempotency_key_retention = interval '0'")
        }
        #expect(refused?.message.contains("idempotency_key_retention_positive") == true)
    }

    @Test("a killed node's row shows dead after 3 heartbeats and goes after dead_node_retention; a live node's stays")
    func deadNodes() async throws {
        let cluster = try await Cluster.fresh()
        let registry = NodeRegistry(pool: cluster.pool)
        for name in ["alive", "dead-a-minute", "dead-two-hours"] {
            try await registry.register(name, host: "h", pid: 1, version: depotVersion, heartbeatInterval: .seconds(1))
        }
        try await cluster.sql("""
            UPDATE depot.nodes SET heartbeat_at = now() - interval '1 minute' WHERE name = 'dead-a-minute';
            UPDATE depot.nodes SET heartbeat_at = now() - interval '2 hours' WHERE name = 'dead-two-hours';
            """)
        let status = try await cluster.rows("SELECT name, alive FROM depot.node_status ORDER BY name")
            .map { try $0.decode((String, Bool).self) }
        #expect(status.map(\.0) == ["alive", "dead-a-minute", "dead-two-hours"])
        #expect(status.map(\.1) == [true, false, false])
        #expect(try await RetentionPruning(pool: cluster.pool).runOnce().deadNodes == 1)
        let left = try await cluster.rows("SELECT name FROM depot.nodes ORDER BY name").map { try $0.decode(at: 0, as: String.self) }
        #expect(left == ["alive", "dead-a-minute"])
    }

    @Test("sequence gaps recorded longer than sequence_gap_retention ago go, oldest first a batch at a time; recent ones stay")
    func sequenceGaps() async throws {
        let cluster = try await Cluster.fresh()
        // Three gaps of 8 days ago, one of 6 days ago, one of now.
        try await cluster.sql("""
            INSERT INTO depot.sequence_gaps (store, group_key, first_missing, last_missing, released_id, processor, recorded_at)
            SELECT 'trades-in', 'g' || n, n, n, gen_random_uuid(), 'resequencer', now() - make_interval(days => d)
            FROM (VALUES (1, 8), (2, 8), (3, 8), (4, 6), (5, 0)) AS v (n, d);
            """)
        let pruned = try await RetentionPruning(pool: cluster.pool, batch: 2).runOnce()
        #expect(pruned == RetentionPruning.Counts(idempotencyKeys: 0, deadNodes: 0, sequenceGaps: 3))
        let left = try await cluster.rows("SELECT group_key FROM depot.sequence_gaps ORDER BY group_key").map { try $0.decode(at: 0, as: String.self) }
        #expect(left == ["g4", "g5"])

        // The retention is a setting: 5 days takes the gap of 6 days ago too; it must be positive.
        try await cluster.sql("UPDATE depot.settings SET sequence_gap_retention = interval '5 days'")
        #expect(try await RetentionPruning(pool: cluster.pool).runOnce().sequenceGaps == 1)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.sequence_gaps") == 1)
        let refused = await #expect(throws: PostgresError.self) {
            try await cluster.sql("UPDATE depot.settings SET sequence_gap_retention = interval '-1 day'")
        }
        #expect(refused?.message.contains("sequence_gap_retention_positive") == true)
    }

    @Test("a running node prunes on its own, every pruneInterval")
    func nodePrunes() async throws {
        let cluster = try await Cluster.fresh()
        try await NodeRegistry(pool: cluster.pool).register("long-gone", host: "h", pid: 1, version: depotVersion)
        try await cluster.sql("UPDATE depot.nodes SET heartbeat_at = now() - interval '2 hours' WHERE name = 'long-gone'")
        let node = cluster.startNode("node-a") { $0.pruneInterval = .milliseconds(200) }
        let pruned = try await eventually(timeout: .seconds(10)) {
            try await cluster.integer("SELECT count(*) FROM depot.nodes WHERE name = 'long-gone'") == 0
        }
        try await node.stop()
        #expect(pruned)
    }
}
