import Depot
import DepotHTTP
import Foundation
import Postgres
import Testing
import TestSupport

/// HTTP ingress against real PostgreSQL: 202s, the request headers a message takes, batches,
/// bad requests with their statuses, the bearer token, /healthz and /metrics.
@Suite("HTTP ingress")
struct IngressTests {
    struct Accepted: Decodable { let id: String }

    @Test("10,000 POSTs from 50 concurrent keep-alive clients: every answer 202, 10,000 messages stored")
    func manyConcurrentProducers() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let ingress = try cluster.startIngress()
        defer { ingress.server.stop() }
        let client = HTTPClient()
        let results = try await withThrowingTaskGroup(of: [(Int, String)].self) { group in
            for producer in 0..<50 {
                group.addTask {
                    var answers: [(Int, String)] = []
                    for index in 0..<200 {
                        let response = try await ingress.send("POST", "/stores/orders/messages", headers: ["Content-Type": "text/plain"],
                                                              body: Data("p\(producer)-\(index)".utf8), client: client)
                        let id = (try? JSONDecoder().decode(Accepted.self, from: response.body))?.id ?? ""
                        answers.append((response.status, id))
                    }
                    return answers
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(results.count == 10_000)
        #expect(results.allSatisfy { $0.0 == 202 }, "statuses: \(Set(results.map(\.0)))")
        #expect(Set(results.map(\.1)).count == 10_000)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'orders'") == 10_000)
    }

    @Test("request headers set content type, idempotency key, priority, delay, group key and message headers")
    func requestHeaders() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let ingress = try cluster.startIngress()
        defer { ingress.server.stop() }
        let headers: HTTPHeaders = ["Content-Type": "application/json", "Idempotency-Key": "order-7", "Depot-Priority": "5",
                                    "Depot-Delay-Ms": "60000", "Depot-Group-Key": "customer-1", "Depot-Header-Tenant": "acme"]
        let first = try await ingress.send("POST", "/stores/orders/messages", headers: headers, body: Data(#"{"order":7}"#.utf8))
        let again = try await ingress.send("POST", "/stores/orders/messages", headers: headers, body: Data(#"{"order":7}"#.utf8))
        #expect(first.status == 202)
        #expect(again.status == 202)
        struct Answer: Decodable { let id: String; let created: Bool }
        let (a, b) = (try JSONDecoder().decode(Answer.self, from: first.body), try JSONDecoder().decode(Answer.self, from: again.body))
        #expect(a.id == b.id && a.created && !b.created, "a retry with the same key returns the first id")
        let row = try #require(try await cluster.rows("""
            SELECT content_type, idempotency_key, priority, group_key, headers->>'Tenant', convert_from(payload, 'UTF8'),
                   available_at > now() + interval '50 seconds', id::text
            FROM depot.messages
            """).first)
        let decoded = try row.decode((String?, String?, Int, String?, String?, String, Bool, String).self)
        #expect(decoded.0 == "application/json")
        #expect(decoded.1 == "order-7")
        #expect(decoded.2 == 5)
        #expect(decoded.3 == "customer-1")
        #expect(decoded.4 == "acme")
        #expect(decoded.5 == #"{"order":7}"#)
        #expect(decoded.6)
        #expect(decoded.7 == a.id)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 1)
    }

    @Test("a batch is a JSON array or NDJSON, stored in order; a bad item is refused by its index and nothing is stored")
    func batches() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let ingress = try cluster.startIngress()
        defer { ingress.server.stop() }
        let array = #"[{"payload":"one"},{"payload":{"n":2},"priority":1},{"payload_base64":"AAE=","headers":{"k":"v"}}]"#
        let json = try await ingress.send("POST", "/stores/orders/messages/batch", headers: ["Content-Type": "application/json"], body: Data(array.utf8))
        #expect(json.status == 202, "\(String(decoding: json.body, as: UTF8.self))")
        let ndjson = "{\"payload\":\"four\"}\n\n{\"payload\":\"five\",\"group_key\":\"g\"}\n"
        let lines = try await ingress.send("POST", "/stores/orders/messages/batch", headers: ["Content-Type": "application/x-ndjson"], body: Data(ndjson.utf8))
        #expect(lines.status == 202)
        struct Answer: Decodable { let ids: [String] }
        #expect(try JSONDecoder().decode(Answer.self, from: json.body).ids.count == 3)
        #expect(try JSONDecoder().decode(Answer.self, from: lines.body).ids.count == 2)
        let stored = try await cluster.rows("SELECT encode(payload, 'hex'), content_type FROM depot.messages ORDER BY seq")
            .map { try $0.decode((String, String?).self) }
        #expect(stored.map(\.0) == ["one", #"{"n":2}"#, "\u{0}\u{1}", "four", "five"].map { Data($0.utf8).map { String(format: "%02x", $0) }.joined() })
        #expect(stored.map(\.1) == ["text/plain; charset=utf-8", "application/json", "application/octet-stream",
                                    "text/plain; charset=utf-8", "text/plain; charset=utf-8"])

        let bad = try await ingress.send("POST", "/stores/orders/messages/batch", headers: ["Content-Type": "application/json"],
                                         body: Data(#"[{"payload":"ok"},{"payload":"x","priority":"high"}]"#.utf8))
        #expect(bad.status == 400)
        #expect(String(decoding: bad.body, as: UTF8.self).contains("message 1: priority"))
        let unknownField = try await ingress.send("POST", "/stores/orders/messages/batch", body: Data(#"{"payload":"x","colour":"red"}"#.utf8))
        #expect(unknownField.status == 400)
        #expect(String(decoding: unknownField.body, as: UTF8.self).contains("unknown field \\\"colour\\\""))
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 5)
    }

    @Test("bad requests get their status and the node goes on serving", arguments: [
        ("garbage request line", "GARBAGE\r\n\r\n", 400),
        ("invalid Content-Length", "POST /stores/orders/messages HTTP/1.1\r\nContent-Length: ten\r\n\r\n", 400),
        ("negative Content-Length", "POST /stores/orders/messages HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400),
        ("a 20 MiB body", "POST /stores/orders/messages HTTP/1.1\r\nContent-Length: 20971520\r\n\r\n" + String(repeating: "x", count: 20 << 20), 413),
        ("a 1 MiB header line", "POST /stores/orders/messages HTTP/1.1\r\nX: \(String(repeating: "a", count: 1 << 20))\r\n\r\n", 431),
        ("an unknown store", "POST /stores/nope/messages HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi", 404),
        ("a wrong method", "GET /stores/orders/messages HTTP/1.1\r\nConnection: close\r\n\r\n", 405),
        ("an unknown path", "GET /nowhere HTTP/1.1\r\nConnection: close\r\n\r\n", 404),
        ("an empty store name", "POST /stores//messages HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 400),
        ("a path with a segment too many", "POST /stores/orders/x/messages HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 404),
        ("a percent-encoded store name (accepted)", "POST /stores/%6Frders/messages HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 202),
        ("a message header in lower case (accepted)", "POST /stores/orders/messages HTTP/1.1\r\ndepot-header-tenant: acme\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 202),
        ("a message header with no name", "POST /stores/orders/messages HTTP/1.1\r\nDEPOT-HEADER-: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 400),
        ("a bad priority header", "POST /stores/orders/messages HTTP/1.1\r\nDepot-Priority: high\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 400),
        ("a chunked body (accepted)", "POST /stores/orders/messages HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 202),
        ("a request cut off half way", "POST /stores/orders/messages HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly part", 400),
    ])
    func badRequests(_ name: String, raw: String, status: Int) async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let ingress = try cluster.startIngress()
        defer { ingress.server.stop() }
        let answer = try await rawExchange(port: ingress.server.port, Array(raw.utf8), halfClose: true)
        #expect(answer.hasPrefix("HTTP/1.1 \(status) "), "\(name): got \(answer.prefix(120))")
        if status != 202 { #expect(answer.contains("\"error\""), "\(name): errors are JSON with a message") }
        let after = try await ingress.send("POST", "/stores/orders/messages", body: Data("still here".utf8))
        #expect(after.status == 202, "\(name): the node stopped serving")
        let stored = try await cluster.integer("SELECT count(*) FROM depot.messages")
        #expect(stored == (status == 202 ? 2 : 1), "\(name): \(stored) messages stored")
    }

    @Test("with a token set, requests without it or with a wrong one get 401; /healthz stays open")
    func bearerToken() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let ingress = try cluster.startIngress(token: "s3cret")
        defer { ingress.server.stop() }
        let missing = try await ingress.send("POST", "/stores/orders/messages", body: Data("x".utf8))
        let wrong = try await ingress.send("POST", "/stores/orders/messages", headers: ["Authorization": "Bearer guess"], body: Data("x".utf8))
        let metrics = try await ingress.send("GET", "/metrics")
        let right = try await ingress.send("POST", "/stores/orders/messages", headers: ["Authorization": "Bearer s3cret"], body: Data("x".utf8))
        let health = try await ingress.send("GET", "/healthz")
        #expect(missing.status == 401)
        #expect(missing.headers["WWW-Authenticate"] == "Bearer")
        #expect(wrong.status == 401)
        #expect(metrics.status == 401)
        #expect(right.status == 202)
        #expect(health.status == 200)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 1)
    }

    @Test("/healthz answers 200 with the database up and 503 with the reason when it is unreachable")
    func healthz() async throws {
        let cluster = try await Cluster.fresh()
        let ingress = try cluster.startIngress()
        defer { ingress.server.stop() }
        let up = try await ingress.send("GET", "/healthz")
        #expect(up.status == 200)
        #expect(String(decoding: up.body, as: UTF8.self).contains("\"ok\""))

        let nowhere = ConnectionPool(ConnectionConfiguration("postgres://depot@127.0.0.1:\(try freePort())/depot?connect_timeout=2"))
        let producer = Producer(pool: nowhere, stores: StoreDirectory(pool: nowhere))
        let down = await IngressService(.init(node: "n"), producer: producer, pool: nowhere, metrics: NodeMetrics())
            .answer(HTTPRequest(method: "GET", target: "/healthz"))
        #expect(down.status == 503)
        #expect(String(decoding: down.body, as: UTF8.self).contains("database unreachable"))
        let store = await IngressService(.init(node: "n"), producer: producer, pool: nowhere, metrics: NodeMetrics())
            .answer(HTTPRequest(method: "POST", target: "/stores/orders/messages", body: Data("x".utf8)))
        #expect(store.status == 503, "a store the node cannot reach and never saw is unavailable, not unknown")
    }

    @Test("/metrics is Prometheus text and its counters move when messages flow")
    func metrics() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.addStore("orders")
        try await cluster.addProcessor("logger", .sampling, from: "orders") {
            $0.handler = "drop"
            $0.intervalMilliseconds = 0
            $0.concurrency = 10
        }
        let metrics = NodeMetrics()
        let ingress = try cluster.startIngress(metrics: metrics)
        defer { ingress.server.stop() }
        let before = try parsePrometheusText(String(decoding: try await ingress.send("GET", "/metrics").body, as: UTF8.self))
        #expect(before["depot_database_up{node=\"node-a\"}"] == 1)
        #expect(before["depot_store_ready_messages{store=\"orders\"}"] == 0)

        for index in 0..<20 { _ = try await ingress.send("POST", "/stores/orders/messages", body: Data("m\(index)".utf8)) }
        let queued = try parsePrometheusText(String(decoding: try await ingress.send("GET", "/metrics").body, as: UTF8.self))
        #expect(queued["depot_store_ready_messages{store=\"orders\"}"] == 20)
        #expect(queued["depot_http_responses_total{status=\"202\"}"] == 20)
        #expect(queued["depot_produced_messages_total{store=\"orders\"}"] == 20)

        let node = Node(Cluster.nodeConfiguration("node-a"), pool: cluster.pool, metrics: metrics)
        let running = Task { try await node.run() }
        let drained = try await eventually(timeout: .seconds(20)) { metrics.count(.delivered, processor: "logger") == 20 }
        await node.stop()
        try await running.value
        #expect(drained)
        let after = try parsePrometheusText(String(decoding: try await ingress.send("GET", "/metrics").body, as: UTF8.self))
        #expect(after["depot_processor_messages_total{processor=\"logger\",outcome=\"delivered\"}"] == 20)
        #expect(after["depot_delivery_duration_seconds_count{processor=\"logger\"}"] == 20)
        #expect(after["depot_delivery_duration_seconds_bucket{processor=\"logger\",le=\"+Inf\"}"] == 20)
        #expect(after["depot_store_ready_messages{store=\"orders\"}"] == 0)
        #expect((after["depot_http_responses_total{status=\"200\"}"] ?? 0) >= 2)
    }

    @Test("transactional enqueue: a message stored in the caller's transaction exists after commit and never after rollback")
    func transactionalEnqueue() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders'); CREATE TABLE app_orders (n int)")
        let store = PostgresStore(name: "orders", pool: cluster.pool)
        let committed = try await cluster.pool.withTransaction { connection in
            try await connection.query("INSERT INTO app_orders VALUES (1)")
            return try await store.store([OutgoingMessage(text: "order 1 placed")], on: connection)[0].id
        }
        struct Rollback: Error {}
        var rolledBack: UUID?
        await #expect(throws: Rollback.self) {
            try await cluster.pool.withTransaction { connection in
                try await connection.query("INSERT INTO app_orders VALUES (2)")
                rolledBack = try await store.store([OutgoingMessage(text: "order 2 placed")], on: connection)[0].id
                throw Rollback()
            }
        }
        #expect(rolledBack != nil)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE id = '\(committed)'") == 1)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE id = '\(rolledBack!)'") == 0)
        #expect(try await cluster.integer("SELECT count(*) FROM app_orders") == 1)
    }
}
