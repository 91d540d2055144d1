import Depot
import DepotHTTP
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// HTTP ingress tokens limited to named stores (`--http-tokens FILE`) beside the full
/// `DEPOT_HTTP_TOKEN`, and the tokens file's rules.
@Suite("HTTP token scopes")
struct HTTPTokenScopeTests {
    struct ErrorBody: Decodable { let error: String }

    @Test("a token limited to store a: 202 into a, 403 naming the store into b (single and batch) and on /metrics; the full token keeps every store")
    func scopedTokenPostsOnlyToItsStores() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('a'), ('b')")
        let ingress = try cluster.startIngress(token: "full-token", scopedTokens: [.init(token: "a-token", stores: ["a"])])
        defer { ingress.server.stop() }
        let scoped: HTTPHeaders = ["Authorization": "Bearer a-token"]
        let full: HTTPHeaders = ["Authorization": "Bearer full-token"]

        #expect(try await ingress.send("POST", "/stores/a/messages", headers: scoped, body: Data("one".utf8)).status == 202)
        let refused = try await ingress.send("POST", "/stores/b/messages", headers: scoped, body: Data("two".utf8))
        #expect(refused.status == 403)
        let error = try JSONDecoder().decode(ErrorBody.self, from: refused.body).error
        #expect(error.contains("may not store into store \"b\"") && error.contains("\"a\""), "\(error)")
        var batchHeaders = scoped
        batchHeaders.set("Content-Type", "application/json")
        let batch = try await ingress.send("POST", "/stores/b/messages/batch", headers: batchHeaders, body: Data(#"[{"payload": "x"}]"#.utf8))
        #expect(batch.status == 403)
        #expect(try await ingress.send("GET", "/metrics", headers: scoped).status == 403)
        // Consuming reads what every producer stored: not for a token limited to stores, even its own.
        let claim = Data(#"{"consumer": "c", "limit": 1}"#.utf8)
        var claimHeaders = scoped
        claimHeaders.set("Content-Type", "application/json")
        var fullClaimHeaders = full
        fullClaimHeaders.set("Content-Type", "application/json")
        for route in ["claims", "acks", "releases", "leases"] {
            let answer = try await ingress.send("POST", "/stores/a/\(route)", headers: claimHeaders, body: claim)
            #expect(answer.status == 403, "\(route): \(answer.status)")
            #expect(try JSONDecoder().decode(ErrorBody.self, from: answer.body).error.contains("may only store messages"))
        }
        #expect(try await ingress.send("POST", "/stores/a/claims", headers: fullClaimHeaders, body: claim).status == 200)

        #expect(try await ingress.send("POST", "/stores/b/messages", headers: full, body: Data("three".utf8)).status == 202)
        #expect(try await ingress.send("GET", "/metrics", headers: full).status == 200)
        #expect(try await ingress.send("POST", "/stores/b/messages", body: Data("four".utf8)).status == 401)
        #expect(try await ingress.send("POST", "/stores/b/messages", headers: ["Authorization": "Bearer a-tokenX"], body: Data("five".utf8)).status == 401)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'a'") == 1)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'b'") == 1)

        // Refused on the head: a 1 MB body that is never sent still gets its 403 at once.
        let head = "POST /stores/b/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a-token\r\nContent-Length: 1000000\r\n\r\n"
        let answer = try await rawExchange(port: ingress.server.port, Array(head.utf8))
        #expect(answer.hasPrefix("HTTP/1.1 403"), "\(answer.prefix(200))")
    }

    @Test("a tokens file: one token a line with its stores, # comments, percent-encoded names; bad lines name the line, never the token")
    func tokensFileRules() throws {
        let tokens = try IngressTokens.scopedTokens(fromFile: """
            # billing's producers
            t-billing   invoices,my%20store,a%2Cb

            t-orders\torders\r
            """)
        #expect(tokens == [.init(token: "t-billing", stores: ["invoices", "my store", "a,b"]), .init(token: "t-orders", stores: ["orders"])])
        let bad: [(String, String)] = [
            ("t-lonely", "line 1: a token needs the stores"),
            ("t x y", "line 1: more than a token"),
            ("t a\nt b", "line 2: the token is on an earlier line"),
            ("full a", "line 1: the token is DEPOT_HTTP_TOKEN"),
            ("t a,,b", "line 1: store name \"\" is empty"),
            ("t a%zz", "line 1: store name \"a%zz\" is empty, badly percent-encoded"),
            ("t a%E2%80%AEb", "line 1: store name"),
        ]
        for (text, expected) in bad {
            do {
                _ = try IngressTokens.scopedTokens(fromFile: text, full: "full")
                Issue.record("accepted \(text.debugDescription)")
            } catch let problem as IngressTokens.FileProblem {
                #expect(problem.description.hasPrefix(expected), "\(text.debugDescription): \(problem)")
            }
        }
    }

    @Test("depot node --http-tokens with a bad or missing file exits 78 in one line naming the file and line, without the token")
    func badTokensFileStopsTheNode() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tokens-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data("s3cret-token\n".utf8).write(to: file)
        for (path, text) in [(file.path, "line 1: a token needs the stores"), (file.path + ".missing", "cannot be read")] {
            // A node that accepts the file waits for its database for ever: it gets 10 s, then SIGKILL.
            let child = try ChildProcess(depotExecutable.path, ["node", "--name", "a", "--http", "127.0.0.1:0", "--http-tokens", path],
                                         environment: ["DEPOT_DATABASE_URL": "postgres://depot@127.0.0.1:1/depot?connect_timeout=1"])
            defer { child.cleanUp() }
            let timer = Task { try await Task.sleep(for: .seconds(10)); child.signal(SIGKILL) }
            let status = await child.wait()
            timer.cancel()
            let stderr = child.stderr
            #expect(status == 78, "\(stderr)")
            #expect(stderr.hasPrefix("depot: --http-tokens ") && stderr.split(separator: "\n").count == 1, "\(stderr)")
            #expect(stderr.contains(text) && stderr.contains(path) && !stderr.contains("s3cret"), "\(stderr)")
        }
    }
}
