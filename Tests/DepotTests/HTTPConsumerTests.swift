import Depot
import DepotHTTP
import Foundation
import Postgres
import Testing
import TestSupport

/// The consumer API over HTTP (`POST /stores/{store}/claims`, `/acks`, `/releases`, `/leases`),
/// spoken with the project's own HTTPClient to a real node process (`depot node --http`) or to
/// ingress in this process, against real PostgreSQL.
@Suite("Consuming over HTTP")
struct HTTPConsumerTests {
    struct Claimed: Decodable {
        struct Message: Decodable {
            let id: String
            let payload: String?
            let payload_base64: String?
            let content_type: String?
            let headers: [String: String]
            let priority: Int
            let attempts: Int
            let group_key: String?
            let last_error: String?
            let lease_expires_at: String
        }
        let messages: [Message]
    }

    struct Acted: Decodable {
        let acked: [String]?
        let released: [String]?
        let extended: [Lease]?
        let not_held: [String]
        struct Lease: Decodable {
            let id: String
            let lease_expires_at: String
        }
    }

    /// Posts JSON bodies to one node with one kept-alive client.
    struct Consumer: Sendable {
        let base: String
        var token: String?
        let client = HTTPClient()

        init(port: Int, token: String? = nil) {
            base = "http://127.0.0.1:\(port)"
            self.token = token
        }

        func post(_ path: String, _ body: String, timeout: Duration = .seconds(10)) async throws -> HTTPResponse {
            var headers: HTTPHeaders = ["Content-Type": "application/json"]
            if let token { headers.set("Authorization", "Bearer \(token)") }
            return try await client.send(HTTPRequest(method: "POST", target: path, headers: headers, body: Data(body.utf8)),
                                         to: URL(string: base + path)!, timeout: timeout)
        }

        func claim(_ store: String, _ body: String, timeout: Duration = .seconds(10)) async throws -> [Claimed.Message] {
            let response = try await post("/stores/\(store)/claims", body, timeout: timeout)
            #expect(response.status == 200, "\(String(decoding: response.body, as: UTF8.self))")
            return try JSONDecoder().decode(Claimed.self, from: response.body).messages
        }

        func act(_ store: String, _ route: String, _ body: String) async throws -> Acted {
            let response = try await post("/stores/\(store)/\(route)", body)
            #expect(response.status == 200, "\(String(decoding: response.body, as: UTF8.self))")
            return try JSONDecoder().decode(Acted.self, from: response.body)
        }

        /// `depot_http_waiting_claims` from the node's /metrics.
        func waitingClaims() async throws -> Int {
            var headers: HTTPHeaders = [:]
            if let token { headers.set("Authorization", "Bearer \(token)") }
            let response = try await client.send(HTTPRequest(method: "GET", target: "/metrics", headers: headers),
                                                 to: URL(string: base + "/metrics")!, timeout: .seconds(10))
            let samples = try parsePrometheusText(String(decoding: response.body, as: UTF8.self))
            return Int(samples["depot_http_waiting_claims"] ?? -1)
        }
    }

    static func date(_ text: String) -> Date? {
        try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    @Test("claim, ack, release (back with attempts counted), lease expiry to another consumer with attempts counted, a lost lease cannot ack, extend")
    func consumerOverHTTP() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let store = PostgresStore(name: "orders", pool: cluster.pool)
        let ids = try await store.store([
            OutgoingMessage(payload: Data("first".utf8), headers: ["tenant": "acme"], contentType: "text/plain", priority: 5),
            OutgoingMessage(payload: Data(#"{"n":2}"#.utf8), contentType: "application/json"),
            OutgoingMessage(payload: Data([0, 255, 1]), contentType: "application/octet-stream"),
        ]).map { $0.id.uuidString.lowercased() }
        let node = try await cluster.startHTTPNodeProcess("node-a")
        defer { node.kill() }
        let http = Consumer(port: node.port)

        // Two claimed, in delivery order, each an attempt, text as text, leased for lease_ms.
        let before = Date()
        let first = try await http.claim("orders", #"{"consumer":"worker-a","limit":2,"lease_ms":30000}"#)
        #expect(first.map(\.id) == [ids[0], ids[1]])
        #expect(first.map(\.payload) == ["first", #"{"n":2}"#])
        #expect(first.map(\.content_type) == ["text/plain", "application/json"])
        #expect(first[0].headers == ["tenant": "acme"] && first[0].priority == 5 && first[0].payload_base64 == nil)
        #expect(first.allSatisfy { $0.attempts == 1 })
        let expiry = try #require(Self.date(first[0].lease_expires_at), "\(first[0].lease_expires_at)")
        #expect(abs(expiry.timeIntervalSince(before) - 30) < 5, "lease ends \(expiry), 30 s after \(before)")
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE locked_by = 'worker-a'") == 2)

        // Ack one; release the other with an error: it comes back at once, its attempts counted.
        let acked = try await http.act("orders", "acks", #"{"consumer":"worker-a","ids":["\#(ids[0])"]}"#)
        #expect(acked.acked == [ids[0]] && acked.not_held.isEmpty)
        let released = try await http.act("orders", "releases", #"{"consumer":"worker-a","id":"\#(ids[1])","error":"back end busy"}"#)
        #expect(released.released == [ids[1]] && released.not_held.isEmpty)
        let second = try await http.claim("orders", #"{"consumer":"worker-b","limit":10}"#)
        #expect(second.map(\.id) == [ids[1], ids[2]])
        #expect(second[0].attempts == 2 && second[0].last_error == "back end busy")
        #expect(second[1].payload == nil && second[1].payload_base64 == "AP8B", "bytes that are not UTF-8 come as payload_base64")
        #expect(second[1].attempts == 1)
        #expect(try await http.act("orders", "acks", #"{"consumer":"worker-b","ids":["\#(ids[1])"]}"#).acked == [ids[1]])

        // Released with a retry delay: not claimable before it.
        let later = try await http.act("orders", "releases", #"{"consumer":"worker-b","ids":["\#(ids[2])"],"retry_in_ms":60000}"#)
        #expect(later.released == [ids[2]])
        #expect(try await http.claim("orders", #"{"consumer":"worker-c"}"#).isEmpty)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE available_at > now() + interval '50 seconds'") == 1)
        try await cluster.sql("UPDATE depot.messages SET available_at = now()")

        // A short lease runs out: another consumer gets the message with its attempts counted,
        // and the first can no longer ack, release or extend it.
        let short = try await http.claim("orders", #"{"consumer":"worker-c","lease_ms":200}"#)
        #expect(short.map(\.id) == [ids[2]] && short.first?.attempts == 2)
        var taken: [Claimed.Message] = []
        #expect(try await eventually(timeout: .seconds(10)) {
            taken = try await http.claim("orders", #"{"consumer":"worker-d"}"#)
            return !taken.isEmpty
        })
        #expect(taken.map(\.id) == [ids[2]] && taken.first?.attempts == 3)
        let lost = try await http.act("orders", "acks", #"{"consumer":"worker-c","ids":["\#(ids[2])"]}"#)
        #expect(lost.acked == [] && lost.not_held == [ids[2]], "a lost lease cannot ack")
        #expect(try await http.act("orders", "releases", #"{"consumer":"worker-c","id":"\#(ids[2])"}"#).not_held == [ids[2]])
        #expect(try await http.act("orders", "leases", #"{"consumer":"worker-c","ids":["\#(ids[2])"]}"#).not_held == [ids[2]])
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE locked_by = 'worker-d'") == 1)

        // The holder extends its lease; an id of another store is not touched from this one.
        let extended = try await http.act("orders", "leases", #"{"consumer":"worker-d","ids":["\#(ids[2])"],"lease_ms":120000}"#)
        #expect(extended.extended?.map(\.id) == [ids[2]] && extended.not_held.isEmpty)
        let newExpiry = try #require(extended.extended?.first.flatMap { Self.date($0.lease_expires_at) })
        #expect(newExpiry.timeIntervalSinceNow > 100)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE locked_until > now() + interval '100 seconds'") == 1)
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('other')")
        #expect(try await http.act("other", "acks", #"{"consumer":"worker-d","ids":["\#(ids[2])"]}"#).not_held == [ids[2]])
        #expect(try await http.act("orders", "acks", #"{"consumer":"worker-d","ids":["\#(ids[2])"]}"#).acked == [ids[2]])
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 0)
    }

    @Test("a waiting claim wakes within 50 ms of a store's commit, through the node's one LISTEN (best of 5 tries)")
    func longPollWakesQuickly() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let node = try await cluster.startHTTPNodeProcess("node-a")
        defer { node.kill() }
        let http = Consumer(port: node.port)
        let store = PostgresStore(name: "orders", pool: cluster.pool)
        // The node's listener is up (its connection's last statement was the LISTEN): the claims
        // below are woken by its notifications, not by the look again that its start gives waiters.
        #expect(try await eventually {
            try await cluster.integer("""
                SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN "depot_messages"'
                """) == 1
        })
        var fromStart: [Duration] = []
        var fromCommit: [Duration] = []
        for attempt in 0..<5 {
            let waiting = Task { () -> ([Claimed.Message], ContinuousClock.Instant) in
                let messages = try await http.claim("orders", #"{"consumer":"waiter","wait_ms":20000}"#, timeout: .seconds(30))
                return (messages, .now)
            }
            #expect(try await eventually { try await http.waitingClaims() == 1 })
            let started = ContinuousClock.now
            let id = try await store.store(OutgoingMessage(text: "wake \(attempt)")).id
            let committed = ContinuousClock.now
            let (messages, answered) = try await waiting.value
            #expect(messages.map(\.id) == [id.uuidString.lowercased()])
            fromStart.append(answered - started)
            fromCommit.append(answered - committed)
            _ = try await http.act("orders", "acks", #"{"consumer":"waiter","ids":["\#(id.uuidString)"]}"#)
        }
        func ms(_ duration: Duration) -> String {
            String(format: "%.1f", Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15)
        }
        let shown = zip(fromStart, fromCommit).map { "\(ms($0.0)) ms (\(ms($0.1)) ms after the commit returned)" }
        print("HTTPConsumerTests: store call start → claim answer: \(shown.joined(separator: ", "))")
        // Measured from before the store call, so the figure includes the INSERT and its commit.
        #expect(fromStart.min()! < .milliseconds(50), "\(shown)")
        #expect(try await http.waitingClaims() == 0)
    }

    @Test("twenty waiting claims share the node's one LISTEN and its pool, and a batch of twenty wakes them all, one message each")
    func waitersShareOneListen() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let node = try await cluster.startHTTPNodeProcess("node-a", environment: ["DEPOT_DATABASE_URL": cluster.url + "?application_name=consumer-node"])
        defer { node.kill() }
        let http = Consumer(port: node.port)
        let waiters = (0..<20).map { index in
            Task { try await http.claim("orders", #"{"consumer":"w\#(index)","wait_ms":20000}"#, timeout: .seconds(30)) }
        }
        #expect(try await eventually { try await http.waitingClaims() == 20 })
        let connections = try await cluster.integer("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'consumer-node'")
        let listening = try await cluster.integer("""
            SELECT count(*) FROM pg_stat_activity WHERE application_name = 'consumer-node' AND query LIKE 'LISTEN%'
            """)
        #expect(connections <= 11, "the node holds \(connections) connections for 20 waiting claims (at most its pool of 10 and its listener)")
        #expect(listening == 1, "\(listening) connections of the node LISTEN")
        let ids = try await cluster.storeTexts("orders", count: 20).map { $0.uuidString.lowercased() }
        var received: [String] = []
        for waiter in waiters { received += try await waiter.value.map(\.id) }
        #expect(received.sorted() == ids.sorted())
    }

    @Test("a claim with a wait and nothing to claim answers an empty list once the wait ends")
    func longPollEndsEmpty() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let ingress = try cluster.startIngress()
        defer { ingress.server.stop() }
        let http = Consumer(port: ingress.server.port)
        let started = ContinuousClock.now
        #expect(try await http.claim("orders", #"{"consumer":"w","wait_ms":300}"#).isEmpty)
        let waited = ContinuousClock.now - started
        #expect(waited >= .milliseconds(300) && waited < .seconds(5), "\(waited)")
    }

    @Test("waiting claims are bounded: past the limit 503 with Retry-After; one waiting without an announcement looks again within a second")
    func waitingIsBounded() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let arrivals = StoreArrivals(maximumWaiting: 1)
        let ingress = try cluster.startIngress(arrivals: arrivals)
        defer { ingress.server.stop() }
        let http = Consumer(port: ingress.server.port)
        let waiting = Task { try await http.claim("orders", #"{"consumer":"w1","wait_ms":20000}"#, timeout: .seconds(30)) }
        #expect(try await eventually { arrivals.waitingCount == 1 })
        let refused = try await http.post("/stores/orders/claims", #"{"consumer":"w2","wait_ms":20000}"#)
        #expect(refused.status == 503 && refused.headers["Retry-After"] == "1")
        #expect(String(decoding: refused.body, as: UTF8.self).contains("already holds 1 waiting claims"))
        #expect(try await http.claim("orders", #"{"consumer":"w3"}"#).isEmpty, "a claim without a wait still answers")
        // Nothing announces this store here (no node LISTENs): the waiter finds it on its recheck.
        let stored = ContinuousClock.now
        let id = try await cluster.storeTexts("orders", count: 1)[0]
        #expect(try await waiting.value.map(\.id) == [id.uuidString.lowercased()])
        #expect(ContinuousClock.now - stored < .seconds(3))
        #expect(arrivals.waitingCount == 0)
    }

    @Test("SIGTERM answers waiting claims at once with what they have, and the node exits 0")
    func shutdownAnswersWaiters() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let node = try await cluster.startHTTPNodeProcess("node-a")
        defer { node.kill() }
        let http = Consumer(port: node.port)
        let waiting = Task { try await http.claim("orders", #"{"consumer":"w","wait_ms":25000}"#, timeout: .seconds(30)) }
        #expect(try await eventually { try await http.waitingClaims() == 1 })
        // The kept-alive /metrics connection stays open and idle: a stopping server closes it after
        // the grace rather than waiting out its 10 s timeout (it did, before idle meant "waiting
        // for a request with no answer owed" whenever the wait began).
        let signalled = ContinuousClock.now
        node.child.signal(SIGTERM)
        #expect(try await waiting.value.isEmpty)
        #expect(ContinuousClock.now - signalled < .seconds(5), "answered \(ContinuousClock.now - signalled) after SIGTERM")
        #expect(await node.child.wait() == 0)
        #expect(ContinuousClock.now - signalled < .seconds(5), "exited \(ContinuousClock.now - signalled) after SIGTERM")
    }

    @Test("an answer holds at most 16 MiB of payload (at least one message); the rest go back untried")
    func answerIsBounded() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('big');
            INSERT INTO depot.messages (store, payload) SELECT 'big', convert_to(repeat('x', 7 * 1024 * 1024), 'UTF8') FROM generate_series(1, 3);
            """)
        let ingress = try cluster.startIngress()
        defer { ingress.server.stop() }
        let claimed = try await Consumer(port: ingress.server.port).claim("big", #"{"consumer":"w","limit":3}"#)
        #expect(claimed.count == 2)
        #expect(claimed.allSatisfy { $0.payload?.utf8.count == 7 << 20 })
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE locked_by IS NULL AND attempts = 0") == 1)
    }

    static let badBodies: [(route: String, body: String, expected: String)] = [
        ("claims", "", "the body is empty"),
        ("claims", "not json", "the body is not valid JSON"),
        ("claims", "[1]", "the body is not a JSON object"),
        ("claims", "{}", "consumer is required"),
        ("claims", #"{"consumer":""}"#, "consumer must be a string of 1 to 200 characters"),
        ("claims", #"{"consumer":7}"#, "consumer must be a string of 1 to 200 characters without control characters, got 7"),
        ("claims", #"{"consumer":"w","limit":0}"#, "limit must be a whole number from 1 to 1000, got 0"),
        ("claims", #"{"consumer":"w","limit":1001}"#, "limit must be a whole number from 1 to 1000, got 1001"),
        ("claims", #"{"consumer":"w","limit":"10"}"#, #"limit must be a whole number from 1 to 1000, got "10""#),
        ("claims", #"{"consumer":"w","limit":2.5}"#, "limit must be a whole number from 1 to 1000, got 2.5"),
        ("claims", #"{"consumer":"w","limit":true}"#, "limit must be a whole number from 1 to 1000, got true"),
        ("claims", #"{"consumer":"w","lease_ms":0}"#, "lease_ms must be a whole number from 1 to 86400000"),
        ("claims", #"{"consumer":"w","wait_ms":30001}"#, "wait_ms must be a whole number from 0 to 30000, got 30001"),
        ("claims", #"{"consumer":"w","lease":"30s"}"#, #"unknown field "lease"; fields are consumer, lease_ms, limit, wait_ms"#),
        ("acks", #"{"consumer":"w"}"#, "ids is required: an array of 1 to 1000 message ids"),
        ("acks", #"{"consumer":"w","ids":[]}"#, "ids must be an array of 1 to 1000 message ids, got an array of 0"),
        ("acks", #"{"consumer":"w","ids":"x"}"#, "ids must be an array of 1 to 1000 message ids"),
        ("acks", #"{"consumer":"w","ids":["nope"]}"#, #"ids[0] must be a message id (a UUID"#),
        ("acks", #"{"ids":["00000000-0000-0000-0000-000000000000"]}"#, "consumer is required"),
        ("releases", #"{"consumer":"w"}"#, "id or ids is required"),
        ("releases", #"{"consumer":"w","id":"00000000-0000-0000-0000-000000000000","ids":[]}"#, "id and ids were both sent; send one of them"),
        ("releases", #"{"consumer":"w","id":"00000000-0000-0000-0000-000000000000","retry_in_ms":-1}"#, "retry_in_ms must be a whole number from 0 to 86400000, got -1"),
        ("releases", #"{"consumer":"w","id":"00000000-0000-0000-0000-000000000000","error":5}"#, "error must be a string of at most 10000 characters"),
        ("leases", #"{"consumer":"w","ids":["00000000-0000-0000-0000-000000000000"],"lease_ms":"1m"}"#, "lease_ms must be a whole number from 1 to 86400000"),
    ]

    @Test("a bad body gets 400 naming the field and what is allowed, and leases nothing")
    func badBodies() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        _ = try await cluster.storeTexts("orders", count: 1)
        let ingress = try cluster.startIngress()
        defer { ingress.server.stop() }
        let http = Consumer(port: ingress.server.port)
        for (route, body, expected) in Self.badBodies {
            let response = try await http.post("/stores/orders/\(route)", body)
            let text = String(decoding: response.body, as: UTF8.self)
            #expect(response.status == 400, "\(route) \(body): \(text)")
            #expect(text.contains(expected.replacingOccurrences(of: "\"", with: "\\\"")), "\(route) \(body): \(text)")
        }
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE locked_by IS NOT NULL") == 0)
    }

    @Test("an unknown store gets 404, a memory store 409, a large body 413, a wrong method 405, a bad JSON error names them")
    func otherRefusals() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name, kind) VALUES ('local', 'memory')")
        let ingress = try cluster.startIngress()
        defer { ingress.server.stop() }
        let http = Consumer(port: ingress.server.port)
        let unknown = try await http.post("/stores/nope/claims", #"{"consumer":"w"}"#)
        #expect(unknown.status == 404 && String(decoding: unknown.body, as: UTF8.self).contains(#"store \"nope\" is not declared"#))
        let memory = try await http.post("/stores/local/acks", #"{"consumer":"w","ids":["00000000-0000-0000-0000-000000000000"]}"#)
        #expect(memory.status == 409 && String(decoding: memory.body, as: UTF8.self).contains("memory store"))
        let ids = (0..<8000).map { _ in "\"\(UUID().uuidString)\"" }.joined(separator: ",")
        let large = try await http.post("/stores/nope/acks", #"{"consumer":"w","ids":[\#(ids)]}"#)
        #expect(large.status == 413, "\(String(decoding: large.body, as: UTF8.self))")
        let get = try await http.client.send(HTTPRequest(method: "GET", target: "/stores/local/claims"),
                                             to: URL(string: http.base + "/stores/local/claims")!, timeout: .seconds(10))
        #expect(get.status == 405)
    }

    @Test("with DEPOT_HTTP_TOKEN set, every consumer route needs the bearer token")
    func tokenRequired() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let id = try await cluster.storeTexts("orders", count: 1)[0].uuidString
        let ingress = try cluster.startIngress(token: "s3cret")
        defer { ingress.server.stop() }
        var http = Consumer(port: ingress.server.port)
        for (route, body) in [("claims", #"{"consumer":"w"}"#), ("acks", #"{"consumer":"w","ids":["\#(id)"]}"#),
                              ("releases", #"{"consumer":"w","id":"\#(id)"}"#), ("leases", #"{"consumer":"w","ids":["\#(id)"]}"#)] {
            for token in [nil, "wrong"] as [String?] {
                http.token = token
                let refused = try await http.post("/stores/orders/\(route)", body)
                #expect(refused.status == 401 && refused.headers["WWW-Authenticate"] == "Bearer", "\(route) with token \(token ?? "none")")
            }
        }
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE locked_by IS NOT NULL") == 0)
        http.token = "s3cret"
        #expect(try await http.claim("orders", #"{"consumer":"w"}"#).map(\.id) == [id.lowercased()])
        #expect(try await http.act("orders", "acks", #"{"consumer":"w","ids":["\#(id)"]}"#).acked == [id.lowercased()])
    }
}
