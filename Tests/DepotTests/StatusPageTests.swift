import Depot
import DepotHTTP
import Foundation
import Postgres
import Testing
import TestSupport

/// The status page over HTTP: its files and headers, what `status.json` holds, how tokens apply.
/// What a browser makes of it is in StatusPageBrowserTests.
@Suite("Status page")
struct StatusPageTests {
    /// `status.json` decoded loosely, as the page's script reads it.
    static func document(_ response: HTTPResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: response.body) as? [String: Any])
    }

    static func list(_ document: [String: Any], _ key: String) -> [[String: Any]] {
        document[key] as? [[String: Any]] ?? []
    }

    @Test("GET / and /status answer the shell under a strict Content-Security-Policy, with no inline script; script and style are their own routes; a body or another method is refused on the head")
    func shellAndAssets() async throws {
        let cluster = try await Cluster.fresh()
        let ingress = try cluster.startIngress()
        defer { ingress.server.stop() }
        for path in ["/", "/status"] {
            let page = try await ingress.send("GET", path)
            let html = String(decoding: page.body, as: UTF8.self)
            #expect(page.status == 200, "\(path)")
            #expect(page.headers["Content-Type"] == "text/html; charset=utf-8")
            let policy = try #require(page.headers["Content-Security-Policy"])
            #expect(policy.contains("default-src 'none'") && policy.contains("script-src 'self'") && !policy.contains("unsafe"))
            #expect(page.headers["X-Content-Type-Options"] == "nosniff")
            #expect(page.headers["Cache-Control"] == "no-store")
            let scripts = html.matches(of: /<script[^>]*>(.*?)<\/script>/.dotMatchesNewlines())
            #expect(scripts.count == 1 && scripts[0].output.1.isEmpty, "one script, loaded from its own route: \(html)")
            #expect(html.contains(#"src="status.js""#) && html.contains(#"href="status.css""#))
            #expect(!html.contains("style=") && !html.contains("http://") && !html.contains("https://"), "no inline style, nothing from elsewhere")
        }
        let script = try await ingress.send("GET", "/status.js")
        #expect(script.status == 200 && script.headers["Content-Type"] == "text/javascript; charset=utf-8")
        let source = String(decoding: script.body, as: UTF8.self)
        #expect(source.contains("status.json") && source.contains("textContent"))
        #expect(!source.contains("innerHTML") && !source.contains("outerHTML") && !source.contains("insertAdjacentHTML"),
                "data never goes in as markup")
        let style = try await ingress.send("GET", "/status.css")
        #expect(style.status == 200 && style.headers["Content-Type"] == "text/css; charset=utf-8")
        let post = try await ingress.send("POST", "/status", body: Data("x".utf8))
        #expect(post.status == 405)
        // The page's routes read no body: refused on the head, before a 100 Continue.
        for (head, status) in [("GET /status.json", "400"), ("POST /", "405")] {
            let raw = try await rawExchange(port: ingress.server.port, Array(("\(head) HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n"
                                                + "Expect: 100-continue\r\n\r\n").utf8))
            #expect(raw.hasPrefix("HTTP/1.1 \(status)") && !raw.contains("100 Continue"), "\(head): \(raw)")
        }
        let chunked = try await rawExchange(port: ingress.server.port, Array("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".utf8))
        #expect(chunked.hasPrefix("HTTP/1.1 400") && chunked.contains("takes no body"), "\(chunked)")
        let unknown = try await ingress.send("GET", "/status/extra")
        #expect(unknown.status == 404)
    }

    @Test("status.json holds every store's depth, each processor's state, last error and 15 per-minute counts, and each node's heartbeat age")
    func documentContents() async throws {
        let cluster = try await Cluster.fresh()
        // The expected per-minute counts are this minute and the 14 before: seed them well before the next.
        try await awayFromMinuteBoundary(cluster.pool)
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('orders'), ('invoices');
            INSERT INTO depot.processors (name, kind, store, handler, is_active, deactivated_reason)
            VALUES ('audit', 'sampling', 'orders', 'log', false, 'endpoint answered 500'),
                   ('billing', 'sampling', 'invoices', 'drop', true, NULL);
            INSERT INTO depot.nodes (name, heartbeat_at, heartbeat_interval_ms, processors)
            VALUES ('node-a', now() - interval '2 seconds', 1000, '{"billing": 2}'),
                   ('node-gone', now() - interval '1 hour', 1000, '{}');
            -- audit: this minute, 3 minutes ago (two nodes, summed) and 14 minutes ago; 20 minutes ago is out of the plot.
            INSERT INTO depot.processor_stats (processor, node, minute, delivered, failed, dead_lettered, last_error, last_error_at)
            VALUES ('audit', 'node-a', date_trunc('minute', now()), 5, 1, 0, 'HTTP 500 from the back end', now()),
                   ('audit', 'node-a', date_trunc('minute', now()) - interval '3 minutes', 7, 0, 1, NULL, NULL),
                   ('audit', 'node-b', date_trunc('minute', now()) - interval '3 minutes', 2, 2, 0, NULL, NULL),
                   ('audit', 'node-a', date_trunc('minute', now()) - interval '14 minutes', 4, 0, 0, NULL, NULL),
                   ('audit', 'node-a', date_trunc('minute', now()) - interval '20 minutes', 100, 0, 0, NULL, NULL);
            """)
        _ = try await cluster.storeTexts("orders", count: 3)
        let ingress = try cluster.startIngress(node: "node-a")
        defer { ingress.server.stop() }
        let response = try await ingress.send("GET", "/status.json")
        #expect(response.status == 200 && response.headers["Content-Type"] == "application/json")
        let document = try Self.document(response)
        #expect(document["node"] as? String == "node-a")
        #expect(document["refresh_seconds"] as? Int == 5 && document["minutes"] as? Int == 15)
        #expect((document["notes"] as? [String])?.isEmpty == true)

        let stores = Self.list(document, "stores")
        #expect(stores.map { $0["store"] as? String } == ["invoices", "orders"])
        #expect(stores.last?["ready"] as? Int == 3 && stores.last?["dead_letters"] as? Int == 0)

        let processors = Self.list(document, "processors")
        let audit = try #require(processors.first { $0["name"] as? String == "audit" })
        #expect(audit["active"] as? Bool == false && audit["deactivated_reason"] as? String == "endpoint answered 500")
        #expect(audit["last_error"] as? String == "HTTP 500 from the back end")
        let minutes = try #require(audit["minutes"] as? [String: [Int]])
        #expect(minutes["delivered"] == [4] + Array(repeating: 0, count: 10) + [9, 0, 0, 5], "oldest first, two nodes summed")
        #expect(minutes["failed"] == Array(repeating: 0, count: 11) + [2, 0, 0, 1])
        #expect(minutes["dead_lettered"] == Array(repeating: 0, count: 11) + [1, 0, 0, 0])
        let billing = try #require(processors.first { $0["name"] as? String == "billing" })
        #expect(billing["active"] as? Bool == true && billing["nodes"] as? [String: Int] == ["node-a": 2])
        #expect((billing["minutes"] as? [String: [Int]])?["delivered"] == Array(repeating: 0, count: 15))

        let nodes = Self.list(document, "nodes")
        let alive = try #require(nodes.first { $0["name"] as? String == "node-a" })
        #expect(alive["alive"] as? Bool == true && alive["processors"] as? [String: Int] == ["billing": 2])
        let age = try #require(alive["heartbeat_age_seconds"] as? Double)
        #expect(age >= 2 && age < 60, "by the database's clock: \(age)")
        #expect(nodes.first { $0["name"] as? String == "node-gone" }?["alive"] as? Bool == false)
    }

    @Test("status.json lists at most 500 stores and says so; a long reason is cut to 1,000 characters")
    func bounded() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("""
            INSERT INTO depot.stores (name) SELECT 's' || lpad(n::text, 4, '0') FROM generate_series(1, 501) n;
            INSERT INTO depot.processors (name, kind, store, handler, is_active, deactivated_reason)
            VALUES ('p', 'sampling', 's0001', 'log', false, repeat('x', 5000));
            """)
        let ingress = try cluster.startIngress()
        defer { ingress.server.stop() }
        let document = try Self.document(try await ingress.send("GET", "/status.json"))
        let stores = Self.list(document, "stores")
        #expect(stores.count == 500 && stores.last?["store"] as? String == "s0500")
        let notes = document["notes"] as? [String] ?? []
        #expect(notes.count == 1 && notes[0].contains("more than 500 stores") && notes[0].contains("depot stats"), "\(notes)")
        let reason = Self.list(document, "processors").first?["deactivated_reason"] as? String ?? ""
        #expect(reason.count == 1_001 && reason.hasSuffix("…"))
    }

    @Test("with a token: no credentials get 401 with a Basic challenge before any body is read; Basic with the token as password or Bearer pass; a scoped token gets 403 as on /metrics")
    func tokens() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let ingress = try cluster.startIngress(token: "s3cret", scopedTokens: [.init(token: "orders-only", stores: ["orders"])])
        defer { ingress.server.stop() }
        func basic(_ credentials: String) -> HTTPHeaders { ["Authorization": "Basic " + Data(credentials.utf8).base64EncodedString()] }
        for path in ["/", "/status", "/status.json", "/status.js", "/status.css"] {
            let missing = try await ingress.send("GET", path)
            #expect(missing.status == 401, "\(path)")
            #expect(missing.headers["WWW-Authenticate"] == #"Basic realm="Depot status", charset="UTF-8""#, "\(path): a browser asks")
            #expect(try await ingress.send("GET", path, headers: basic("anyone:s3cret")).status == 200, "\(path)")
            #expect(try await ingress.send("GET", path, headers: basic(":s3cret")).status == 200, "\(path): any user name")
            #expect(try await ingress.send("GET", path, headers: ["Authorization": "Bearer s3cret"]).status == 200, "\(path): scripts")
            #expect(try await ingress.send("GET", path, headers: basic("s3cret:guess")).status == 401, "\(path): the password is the token")
            #expect(try await ingress.send("GET", path, headers: ["Authorization": "Basic not base64!"]).status == 401, "\(path)")
            let scoped = try await ingress.send("GET", path, headers: basic("x:orders-only"))
            #expect(scoped.status == 403, "\(path): the page names every store")
            let error = try JSONDecoder().decode([String: String].self, from: scoped.body)["error"] ?? ""
            #expect(error.contains("may not read \(path);"), "\(error)")
        }
        // Refused on the head: a body announced with Expect: 100-continue never gets its 100.
        let raw = try await rawExchange(port: ingress.server.port, Array(("POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
                                            + "Expect: 100-continue\r\n\r\n").utf8))
        #expect(raw.hasPrefix("HTTP/1.1 401") && !raw.contains("100 Continue"), "\(raw)")
        let api = try await ingress.send("POST", "/stores/orders/messages", body: Data("x".utf8))
        #expect(api.status == 401 && api.headers["WWW-Authenticate"] == "Bearer", "the API's challenge is unchanged")
    }

    @Test("an Authorization value presents its token as Bearer or as the password of Basic, and nothing else")
    func presentedToken() {
        func token(_ value: String) -> String? { IngressTokens.presented(in: value).map { String(decoding: $0, as: UTF8.self) } }
        let encoded = { (text: String) in Data(text.utf8).base64EncodedString() }
        #expect(token("Bearer abc") == "abc")
        #expect(token("bearer abc") == "abc")
        #expect(token("Basic " + encoded("user:pa:ss")) == "pa:ss", "the password runs to the end, colons included")
        #expect(token("basic " + encoded(":abc")) == "abc")
        #expect(token("Basic " + encoded("no colon")) == nil)
        #expect(token("Basic %%%") == nil)
        #expect(token("Digest abc") == nil)
        #expect(token("Bearerabc") == nil)
    }

    @Test("status.json answers 503 with the reason when the database is unreachable")
    func databaseDown() async throws {
        let nowhere = ConnectionPool(ConnectionConfiguration("postgres://depot@127.0.0.1:\(try freePort())/depot?connect_timeout=2"))
        let service = IngressService(.init(node: "n"), producer: Producer(pool: nowhere, stores: StoreDirectory(pool: nowhere)),
                                     pool: nowhere, metrics: NodeMetrics())
        let data = await service.answer(HTTPRequest(method: "GET", target: "/status.json"))
        #expect(data.status == 503)
        #expect(String(decoding: data.body, as: UTF8.self).contains("database unreachable"))
        #expect(await service.answer(HTTPRequest(method: "GET", target: "/status")).status == 200, "the page itself still loads, to say so")
    }

    @Test("a depot node process with --http and DEPOT_HTTP_TOKEN serves the page, and status.json lists the node alive")
    func nodeProcess() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let node = try await cluster.startHTTPNodeProcess("node-a", environment: ["DEPOT_HTTP_TOKEN": "s3cret"])
        defer { node.kill() }
        let client = HTTPClient()
        let base = "http://127.0.0.1:\(node.port)"
        let headers: HTTPHeaders = ["Authorization": "Basic " + Data("ops:s3cret".utf8).base64EncodedString()]
        let page = try await client.send(HTTPRequest(method: "GET", target: "/", headers: headers), to: URL(string: base + "/")!,
                                         timeout: .seconds(10))
        #expect(page.status == 200 && String(decoding: page.body, as: UTF8.self).contains("Depot status"))
        let refused = try await client.send(HTTPRequest(method: "GET", target: "/status"), to: URL(string: base + "/status")!,
                                            timeout: .seconds(10))
        #expect(refused.status == 401)
        let alive = try await eventually(timeout: .seconds(10)) {
            let response = try await client.send(HTTPRequest(method: "GET", target: "/status.json", headers: headers),
                                                 to: URL(string: base + "/status.json")!, timeout: .seconds(10))
            let nodes = Self.list(try Self.document(response), "nodes")
            return nodes.contains { $0["name"] as? String == "node-a" && $0["alive"] as? Bool == true }
        }
        #expect(alive)
    }
}
