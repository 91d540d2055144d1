import Depot
import Foundation
import Postgres
import Testing
import TestSupport

/// The aggregating processor (issue 24): correlation groups kept in PostgreSQL, released by size
/// into a target store, through nodes in this process.
@Suite("Aggregating processor")
struct AggregatingTests {
    /// Stores `parts` and `out`, and an aggregating processor from one to the other.
    static func aggregating(_ cluster: Cluster, releaseSize: Int, members: Int = 2) async throws {
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('parts'), ('out');
            INSERT INTO depot.processors (name, kind, store, target_store, release_size, correlation_header, interval_ms, batch_size, member_count)
            VALUES ('aggregator', 'aggregating', 'parts', 'out', \(releaseSize), 'Order', 0, 100, \(members));
            """)
    }

    static func part(_ order: String?, _ number: Int) -> OutgoingMessage {
        OutgoingMessage(payload: Data("{\"n\": \(number)}".utf8), headers: order.map { ["Order": $0] } ?? [:], contentType: "application/json")
    }

    @Test("release_size 1000: 1,000 messages from 3 producers through 2 nodes make exactly one release holding all 1,000")
    func sizeReleaseAcrossNodes() async throws {
        let cluster = try await Cluster.fresh()
        try await Self.aggregating(cluster, releaseSize: 1000)
        let nodes = [cluster.startNode("node-a"), cluster.startNode("node-b")]
        let parts = PostgresStore(name: "parts", pool: cluster.pool)
        try await withThrowingTaskGroup(of: Void.self) { producers in
            for producer in 0..<3 {
                producers.addTask {
                    let numbers = Array(stride(from: producer, to: 1000, by: 3))
                    for start in stride(from: 0, to: numbers.count, by: 40) {
                        _ = try await parts.store(numbers[start..<min(start + 40, numbers.count)].map { Self.part("o-1", $0) })
                    }
                }
            }
            try await producers.waitForAll()
        }
        let released = try await eventually(timeout: .seconds(30)) {
            let out = try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'out'")
            let left = try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'parts'")
            return out >= 1 && left == 0
        }
        #expect(released)
        for node in nodes { try await node.stop() }

        let rows = try await cluster.rows("SELECT payload, headers, content_type FROM depot.messages WHERE store = 'out'")
        #expect(rows.count == 1, "releases: \(rows.count)")
        let (payload, headers, contentType) = try #require(rows.first).decode((Data, [String: String], String?).self)
        let members = try #require(try JSONSerialization.jsonObject(with: payload) as? [[String: Int]])
        #expect(members.count == 1000)
        #expect(Set(members.compactMap { $0["n"] }) == Set(0..<1000))
        #expect(headers["Depot-Group"] == "o-1" && headers["Depot-Group-Size"] == "1000" && headers["Order"] == "o-1")
        #expect(contentType == "application/json")
        #expect(try await cluster.integer("SELECT count(*) FROM depot.message_groups") == 0)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.group_messages") == 0)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.dead_letters") == 0)
    }

    @Test("groups fill and release apart; a message without the correlation header is dead-lettered naming it")
    func groupsReleaseApart() async throws {
        let cluster = try await Cluster.fresh()
        try await Self.aggregating(cluster, releaseSize: 3, members: 1)
        let node = cluster.startNode("node-a")
        let parts = PostgresStore(name: "parts", pool: cluster.pool)
        _ = try await parts.store([Self.part("a", 1), Self.part("b", 1), Self.part(nil, 0), Self.part("a", 2), Self.part("b", 2), Self.part("a", 3)])
        let settled = try await eventually {
            let left = try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'parts'")
            let dead = try await cluster.integer("SELECT count(*) FROM depot.dead_letters")
            let out = try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'out'")
            return left == 0 && dead == 1 && out == 1
        }
        #expect(settled)
        let out = try await cluster.rows("SELECT convert_from(payload, 'UTF8'), headers ->> 'Depot-Group' FROM depot.messages WHERE store = 'out'")
        let (body, group) = try #require(out.first).decode((String, String).self)
        #expect(body == "[{\"n\": 1}, {\"n\": 2}, {\"n\": 3}]" && group == "a")
        let waiting = try await PostgresStore(name: "parts", pool: cluster.pool).groupMetadata("b")
        #expect(waiting?.size == 2)
        let dead = try await cluster.rows("SELECT reason, last_error FROM depot.dead_letters")
        let (reason, lastError) = try #require(dead.first).decode((String, String).self)
        #expect(reason == "no correlation key" && lastError == "message has no header \"Order\" to correlate it by")
        try await node.stop()
    }

    @Test("the end marker arriving first, then the other members: one release, complete, at the marker's count")
    func endMarkerFirst() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('parts'), ('out');
            INSERT INTO depot.processors (name, kind, store, target_store, release_count_header, correlation_header, interval_ms, batch_size)
            VALUES ('aggregator', 'aggregating', 'parts', 'out', 'Depot-Group-Count', 'Order', 0, 100);
            """)
        let node = cluster.startNode("node-a")
        let parts = PostgresStore(name: "parts", pool: cluster.pool)
        var marker = Self.part("f-1", 0)
        marker.headers["Depot-Group-Count"] = "5"
        _ = try await parts.store(marker)
        let held = try await eventually { try await parts.groupMetadata("f-1")?.condition == "5" }
        #expect(held, "the marker's count never became the group's condition")
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'out'") == 0)
        _ = try await parts.store((1...3).map { Self.part("f-1", $0) })
        let partial = try await eventually { try await parts.groupMetadata("f-1")?.size == 4 }
        #expect(partial)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'out'") == 0, "released before the count was reached")
        _ = try await parts.store(Self.part("f-1", 4))
        let released = try await eventually { try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'out'") == 1 }
        #expect(released)
        try await node.stop()
        let out = try await cluster.rows("SELECT convert_from(payload, 'UTF8') FROM depot.messages WHERE store = 'out'")
        #expect(try out.first?.decode(at: 0, as: String.self) == "[{\"n\": 0}, {\"n\": 1}, {\"n\": 2}, {\"n\": 3}, {\"n\": 4}]")
        #expect(try await parts.groupMetadata("f-1") == nil)
    }

    @Test("a group that waited group_timeout_ms is sent with what it holds, or dead-lettered, as the row says")
    func groupTimeout() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('parts'), ('out'), ('parts-2');
            INSERT INTO depot.processors (name, kind, store, target_store, release_size, correlation_header, group_timeout_ms, interval_ms)
            VALUES ('sender', 'aggregating', 'parts', 'out', 100, 'Order', 300, 0);
            INSERT INTO depot.processors (name, kind, store, target_store, release_size, correlation_header, group_timeout_ms,
                                          group_timeout_action, interval_ms)
            VALUES ('dropper', 'aggregating', 'parts-2', 'out', 100, 'Order', 300, 'dead_letter', 0);
            """)
        let node = cluster.startNode("node-a")
        _ = try await PostgresStore(name: "parts", pool: cluster.pool).store((0..<3).map { Self.part("t", $0) })
        _ = try await PostgresStore(name: "parts-2", pool: cluster.pool).store((0..<2).map { Self.part("d", $0) })
        let settled = try await eventually {
            let out = try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'out'")
            let dead = try await cluster.integer("SELECT count(*) FROM depot.dead_letters WHERE reason = 'group expired'")
            return out == 1 && dead == 2
        }
        #expect(settled)
        try await node.stop()
        let out = try await cluster.rows("SELECT convert_from(payload, 'UTF8'), headers ->> 'Depot-Group-Size' FROM depot.messages WHERE store = 'out'")
        let (body, size) = try #require(out.first).decode((String, String).self)
        #expect(body == "[{\"n\": 0}, {\"n\": 1}, {\"n\": 2}]" && size == "3")
        let dead = try await cluster.rows("SELECT store, processor, last_error FROM depot.dead_letters ORDER BY created_at")
        let (store, processor, lastError) = try #require(dead.first).decode((String, String, String).self)
        #expect(store == "parts-2" && processor == "dropper" && lastError == "group \"d\" held 2 messages after 300 ms")
        #expect(try await cluster.integer("SELECT count(*) FROM depot.message_groups") == 0)
    }

    @Test("bad aggregating rows are refused by the database, naming the column")
    func badRowsRefused() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('parts'), ('out')")
        let cases: [(String, String)] = [
            ("'out', NULL", "release_size"),
            ("'out', 0", "release_size"),
            ("NULL, 10", "target_store"),
        ]
        let more: [(String, String)] = [
            ("group_timeout_ms) VALUES ('agg', 'aggregating', 'parts', 'out', 10, -1)", "group_timeout_ms"),
            ("group_timeout_action) VALUES ('agg', 'aggregating', 'parts', 'out', 10, 'bin')", "group_timeout_action"),
            ("group_timeout_from) VALUES ('agg', 'aggregating', 'parts', 'out', 10, 'middle')", "group_timeout_from"),
        ]
        for (rest, column) in more {
            do {
                try await cluster.sql("INSERT INTO depot.processors (name, kind, store, target_store, release_size, \(rest)")
                Issue.record("a row with \(rest) was accepted")
            } catch let error as PostgresError {
                #expect(error.sqlState == .checkViolation && error.message.contains("processors.\(column)"), "\(rest) → \(error)")
            }
        }
        for (values, column) in cases {
            do {
                try await cluster.sql("""
                    INSERT INTO depot.processors (name, kind, store, target_store, release_size) VALUES ('agg', 'aggregating', 'parts', \(values))
                    """)
                Issue.record("a row with \(values) was accepted")
            } catch let error as PostgresError {
                #expect(error.sqlState == .checkViolation && error.message.contains("processors.\(column)"), "\(values) → \(error)")
            }
        }
    }
}
