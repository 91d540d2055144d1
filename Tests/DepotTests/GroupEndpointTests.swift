import DepotHTTP
import Depot
import Foundation
import Postgres
import Testing
import TestSupport

/// Aggregating and resequencing processors with a `target_endpoint` (issue 24): each release
/// commits into the processor's hand-off store, and the same processor delivers from there to a
/// real HTTP back end on loopback under the forwarding rules.
@Suite("Group processors sending to an endpoint")
struct GroupEndpointTests {
    /// A back end that answers 503 to the n-th request (counting from 1) while `fails(n)` says
    /// so, 200 otherwise; it keeps each request with the status it got.
    final class Flaky: @unchecked Sendable {
        private let lock = NSLock()
        private var log: [(request: HTTPRequest, status: Int)] = []
        private var fails: @Sendable (Int) -> Bool
        private var backEnd: RecordingBackEnd?

        init(fails: @escaping @Sendable (Int) -> Bool) throws {
            self.fails = fails
            backEnd = try RecordingBackEnd { [unowned self] request in self.answer(request) }
        }

        private func answer(_ request: HTTPRequest) -> HTTPResponse {
            lock.withLock {
                let status = fails(log.count + 1) ? 503 : 200
                log.append((request, status))
                return HTTPResponse(status: status)
            }
        }

        /// Changes which requests fail from now on.
        func fail(when fails: @escaping @Sendable (Int) -> Bool) { lock.withLock { self.fails = fails } }
        /// The requests answered 200, in arrival order.
        var delivered: [HTTPRequest] { lock.withLock { log.filter { $0.status == 200 }.map(\.request) } }
        var requests: Int { lock.withLock { log.count } }
        var url: String { backEnd!.url }
        func stop() { backEnd?.stop() }
    }

    @Test("an aggregate goes to the endpoint from the hand-off store, retried while the back end fails its first two requests")
    func aggregateToEndpoint() async throws {
        let cluster = try await Cluster.fresh()
        let backEnd = try Flaky { $0 <= 2 }
        defer { backEnd.stop() }
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('parts');
            INSERT INTO depot.endpoints (name, url) VALUES ('back-end', '\(backEnd.url)');
            INSERT INTO depot.processors (name, kind, store, target_endpoint, release_size, correlation_header, interval_ms, batch_size,
                                          retry_interval_ms, max_delivery_attempts)
            VALUES ('aggregator', 'aggregating', 'parts', 'back-end', 3, 'Order', 0, 100, 50, 5);
            """)
        let declared = try await cluster.rows("SELECT kind, description FROM depot.stores WHERE name = 'aggregator/handoff'")
        let (kind, description) = try #require(declared.first).decode((String, String).self)
        #expect(kind == "postgres" && description == "hand-off of aggregating processor aggregator to endpoint back-end")

        let node = cluster.startNode("node-a")
        let parts = PostgresStore(name: "parts", pool: cluster.pool)
        _ = try await parts.store([AggregatingTests.part("a", 1), AggregatingTests.part("b", 1), AggregatingTests.part("a", 2),
                                   AggregatingTests.part("b", 2), AggregatingTests.part("a", 3), AggregatingTests.part("b", 3)])
        let settled = try await eventually(timeout: .seconds(20)) {
            let waiting = try await cluster.integer("SELECT count(*) FROM depot.messages")
            return backEnd.delivered.count == 2 && waiting == 0
        }
        try await node.stop()
        #expect(settled, "delivered \(backEnd.delivered.count) of 2 aggregates")
        #expect(backEnd.requests == 4, "two failed attempts, then one delivery per group")
        var bodies: [String: String] = [:]
        for request in backEnd.delivered {
            bodies[request.headers["Depot-Group"] ?? "?"] = String(decoding: request.body, as: UTF8.self)
            #expect(request.headers["Depot-Group-Size"] == "3" && request.headers["Content-Type"] == "application/json")
        }
        #expect(bodies == ["a": "[{\"n\": 1}, {\"n\": 2}, {\"n\": 3}]", "b": "[{\"n\": 1}, {\"n\": 2}, {\"n\": 3}]"])
        #expect(try await cluster.integer("SELECT count(*) FROM depot.message_groups") == 0)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.dead_letters") == 0)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.processors WHERE is_active") == 1)
    }

    @Test("a resequenced stream reaches the endpoint in order through two nodes, a failing back end retried in place")
    func resequencedToEndpoint() async throws {
        let cluster = try await Cluster.fresh()
        // Requests 5 to 7 fail: whichever message they carried is retried before the next of its stream.
        let backEnd = try Flaky { (5...7).contains($0) }
        defer { backEnd.stop() }
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('parts');
            INSERT INTO depot.endpoints (name, url) VALUES ('back-end', '\(backEnd.url)');
            INSERT INTO depot.processors (name, kind, store, target_endpoint, correlation_header, interval_ms, batch_size, member_count,
                                          retry_interval_ms, max_delivery_attempts)
            VALUES ('resequencer', 'resequencing', 'parts', 'back-end', 'Stream', 0, 50, 2, 30, 10);
            """)
        let nodes = [cluster.startNode("node-a"), cluster.startNode("node-b")]
        var random = SeededRandom(seed: 42)
        let messages = ((1...150).map { ResequencingTests.part("a", $0) } + (1...40).map { ResequencingTests.part("b", $0) }).shuffled(using: &random)
        let parts = PostgresStore(name: "parts", pool: cluster.pool)
        for start in stride(from: 0, to: messages.count, by: 25) {
            _ = try await parts.store(Array(messages[start..<min(start + 25, messages.count)]))
        }
        let done = try await eventually(timeout: .seconds(60)) { backEnd.delivered.count >= 190 }
        for node in nodes { try await node.stop() }
        #expect(done, "delivered \(backEnd.delivered.count) of 190")

        func stream(_ name: String) -> [Int] {
            backEnd.delivered.filter { $0.headers["Stream"] == name }.compactMap { $0.headers["Depot-Sequence-Number"].flatMap { Int($0) } }
        }
        #expect(stream("a") == Array(1...150))
        #expect(stream("b") == Array(1...40))
        #expect(backEnd.requests == 193, "each message once, and three failed attempts")
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 0)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.dead_letters") == 0)
    }

    @Test("a back end that keeps failing: the aggregate is dead-lettered with max_delivery_drop, or without it the processor deactivates, the aggregate first in its hand-off store until reactivated")
    func keepsFailing() async throws {
        let cluster = try await Cluster.fresh()
        let backEnd = try Flaky { _ in true }
        defer { backEnd.stop() }
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('parts-1'), ('parts-2');
            INSERT INTO depot.endpoints (name, url) VALUES ('back-end', '\(backEnd.url)');
            INSERT INTO depot.processors (name, kind, store, target_endpoint, release_size, correlation_header, interval_ms,
                                          retry_interval_ms, max_delivery_attempts, max_delivery_drop)
            VALUES ('dropper', 'aggregating', 'parts-1', 'back-end', 2, 'Order', 0, 20, 2, true),
                   ('stopper', 'aggregating', 'parts-2', 'back-end', 2, 'Order', 0, 20, 2, false);
            """)
        let node = cluster.startNode("node-a")
        _ = try await PostgresStore(name: "parts-1", pool: cluster.pool).store([AggregatingTests.part("d", 1), AggregatingTests.part("d", 2)])
        _ = try await PostgresStore(name: "parts-2", pool: cluster.pool).store([AggregatingTests.part("s", 1), AggregatingTests.part("s", 2)])
        let settled = try await eventually(timeout: .seconds(20)) {
            let dead = try await cluster.integer("SELECT count(*) FROM depot.dead_letters WHERE store = 'dropper/handoff'")
            let stopped = try await cluster.integer("SELECT count(*) FROM depot.processors WHERE name = 'stopper' AND NOT is_active")
            return dead == 1 && stopped == 1
        }
        #expect(settled)

        let dead = try await cluster.rows("SELECT reason, last_error, processor, convert_from(payload, 'UTF8') FROM depot.dead_letters")
        let (reason, lastError, processor, payload) = try #require(dead.first).decode((String, String, String, String).self)
        #expect(reason.hasPrefix("max delivery attempts (2) reached") && lastError == "endpoint back-end answered 503" && processor == "dropper")
        #expect(payload == "[{\"n\": 1}, {\"n\": 2}]")
        #expect(try await cluster.integer("SELECT count(*) FROM depot.processors WHERE name = 'dropper' AND is_active") == 1)
        let stopped = try await cluster.rows("SELECT deactivated_reason FROM depot.processors WHERE name = 'stopper'")
        #expect(try stopped.first?.decode(at: 0, as: String.self).contains("a message failed 2 delivery attempts (max_delivery_drop is false)") == true)
        let waiting = try await cluster.rows("SELECT attempts, convert_from(payload, 'UTF8') FROM depot.messages WHERE store = 'stopper/handoff'")
        let (attempts, aggregate) = try #require(waiting.first).decode((Int, String).self)
        #expect(waiting.count == 1 && attempts == 2 && aggregate == "[{\"n\": 1}, {\"n\": 2}]")
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store LIKE 'parts-%'") == 0)

        // The back end recovers and an operator reactivates: the waiting aggregate goes out.
        backEnd.fail { _ in false }
        try await cluster.sql("SELECT depot.activate_processor('stopper')")
        let resumed = try await eventually(timeout: .seconds(20)) {
            try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'stopper/handoff'") == 0
        }
        try await node.stop()
        #expect(resumed)
        #expect(backEnd.delivered.map { String(decoding: $0.body, as: UTF8.self) } == ["[{\"n\": 1}, {\"n\": 2}]"])
        #expect(backEnd.delivered.first?.headers["Depot-Group"] == "s")
    }

    @Test("group rows with both or neither of target_store and target_endpoint are refused naming the column; a hand-off store that is not postgres too")
    func badRowsRefused() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('parts'), ('out');
            INSERT INTO depot.stores (name, kind) VALUES ('local/handoff', 'memory');
            INSERT INTO depot.endpoints (name, url) VALUES ('back-end', 'http://127.0.0.1:9/in');
            """)
        let cases: [(String, String, String)] = [
            ("('agg', 'aggregating', 'parts', 'out', 'back-end', 10)", "target_endpoint", "is set with target_store"),
            ("('agg', 'aggregating', 'parts', NULL, NULL, 10)", "target_store", "or target_endpoint"),
            ("('seq', 'resequencing', 'parts', 'out', 'back-end', NULL)", "target_endpoint", "is set with target_store"),
            ("('seq', 'resequencing', 'parts', NULL, NULL, NULL)", "target_store", "or target_endpoint"),
            ("('local', 'aggregating', 'parts', NULL, 'back-end', 10)", "target_endpoint", "declared with kind memory"),
        ]
        for (values, column, says) in cases {
            do {
                try await cluster.sql("""
                    INSERT INTO depot.processors (name, kind, store, target_store, target_endpoint, release_size) VALUES \(values)
                    """)
                Issue.record("a row \(values) was accepted")
            } catch let error as PostgresError {
                #expect(error.sqlState == .checkViolation && error.message.contains("processors.\(column)") && error.message.contains(says),
                        "\(values) → \(error)")
            }
        }
        #expect(try await cluster.integer("SELECT count(*) FROM depot.stores WHERE name LIKE '%/handoff'") == 1, "a refused row declares nothing")
        try await cluster.sql("""
            INSERT INTO depot.processors (name, kind, store, target_endpoint) VALUES ('seq', 'resequencing', 'parts', 'back-end')
            """)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.stores WHERE name = 'seq/handoff' AND kind = 'postgres'") == 1)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.stores WHERE name = depot.processor_handoff_store('seq')") == 1)
    }
}
