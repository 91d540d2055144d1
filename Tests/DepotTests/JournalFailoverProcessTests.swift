import Depot
import DepotHTTP
import Foundation
import Postgres
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Seed 003 made durable: a `depot node --http` process keeps answering 202 while PostgreSQL is
/// down, holding messages in its journal; it survives `kill -9`; once PostgreSQL is back, every
/// message reaches the back end.
@Suite("Journal failover across kill -9")
struct JournalFailoverProcessTests {
    @Test("PostgreSQL stopped: 1,000 POSTs answered 202 from the journal; node killed -9 and restarted; PostgreSQL back: all 1,000 delivered")
    func journalSurvivesKillAndOutage() async throws {
        let server = try await ThrowawayPostgres.start()
        defer { Task { await server.destroy() } }
        let pool = ConnectionPool(ConnectionConfiguration(server.url), maximumConnections: 2)
        let (echo, echoURL) = try Cluster.echo()
        defer { echo.stop() }
        try await pool.withConnection { connection in
            try await Migrator().migrate(on: connection)
            try await connection.executeUnsafeScript("""
                INSERT INTO depot.stores (name, kind) VALUES ('orders-journal', 'journal');
                INSERT INTO depot.stores (name, failover_store, guaranteed_delivery) VALUES ('orders', 'orders-journal', true);
                INSERT INTO depot.endpoints (name, url) VALUES ('back-end', '\(echoURL)');
                INSERT INTO depot.processors (name, kind, store, target_endpoint, interval_ms, batch_size)
                VALUES ('forward-orders', 'forwarding', 'orders', 'back-end', 0, 50);
                """)
        }
        await pool.close()
        let journal = FileManager.default.temporaryDirectory.appendingPathComponent("depot-journal-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: journal) }
        let port = try freePort()
        let base = URL(string: "http://127.0.0.1:\(port)")!
        let client = HTTPClient()
        func startNode() throws -> ChildProcess {
            try ChildProcess(depotExecutable.path, ["node", "--name", "node-a", "--http", "127.0.0.1:\(port)", "--journal", journal.path,
                                                    "--lease", "2s", "--reconcile", "1s", "--heartbeat", "1s"],
                             environment: ["DEPOT_DATABASE_URL": server.url])
        }
        func health() async -> Int {
            (try? await client.send(HTTPRequest(method: "GET", target: "/healthz"), to: base.appendingPathComponent("healthz"), timeout: .seconds(5)))?.status ?? 0
        }

        var node = try startNode()
        #expect(try await eventually(timeout: .seconds(20)) { await health() == 200 }, "\(node.stderr)")
        // The node keeps the store rows beside its journal, for a restart while the database is down.
        #expect(try await eventually(timeout: .seconds(10)) { FileManager.default.fileExists(atPath: journal.appendingPathComponent("stores.json").path) })

        try await server.stop()
        let answers = try await withThrowingTaskGroup(of: [(Int, String?, String)].self) { group in
            for producer in 0..<10 {
                group.addTask {
                    var answers: [(Int, String?, String)] = []
                    for index in 0..<100 {
                        let response = try await client.send(HTTPRequest(method: "POST", target: "/stores/orders/messages", body: Data("p\(producer)-\(index)".utf8)),
                                                             to: base.appendingPathComponent("stores/orders/messages"), timeout: .seconds(20))
                        struct Accepted: Decodable { let id: String }
                        answers.append((response.status, response.headers["Depot-Held-In"],
                                        (try? JSONDecoder().decode(Accepted.self, from: response.body))?.id ?? ""))
                    }
                    return answers
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(answers.count == 1000)
        #expect(answers.allSatisfy { $0.0 == 202 && $0.1 == "orders-journal" }, "statuses: \(Set(answers.map(\.0)))")
        let ids = Set(answers.map(\.2))
        #expect(ids.count == 1000)

        node.signal(SIGKILL)
        _ = await node.wait()
        node.cleanUp()
        node = try startNode()
        defer { node.cleanUp() }
        // Back up without a database: it answers, says it is unhealthy, and holds nothing yet delivered.
        #expect(try await eventually(timeout: .seconds(20)) { await health() == 503 }, "\(node.stderr)")
        #expect(echo.snapshot().requests == 0)

        try await server.restart()
        let delivered = try await eventually(timeout: .seconds(90)) { echo.snapshot().distinct >= 1000 }
        #expect(delivered, "back end saw \(echo.snapshot().distinct) of 1000; node said: \(node.stderr.suffix(2000))")
        #expect(Set(echo.snapshot().byMessage.keys) == ids, "every id POSTed reached the back end, and nothing else")
        node.signal(SIGTERM)
        #expect(await node.wait() == 0)
    }
}
