import Depot
import DepotHTTP
import DepotProcess
import Foundation
import Postgres
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Producers and `depot node` processes through a real PgBouncer in transaction mode
/// (`DEPOT_DATABASE_POOL_MODE=transaction`), with LISTEN on a direct connection
/// (`DEPOT_LISTEN_DATABASE_URL`). PgBouncer gets 2 server connections per database; nodes and
/// producers open more clients than that.
@Suite("PgBouncer in transaction mode")
struct PgBouncerTests {
    /// Starts `depot node` through `bouncer`; the reconcile interval is long, so the node sees row
    /// changes only through its LISTEN.
    /// With `http`, the node serves HTTP on a free port and keeps its journal in PgBouncer's folder
    /// (removed with it).
    static func startNode(_ name: String, _ cluster: Cluster, through bouncer: PgBouncer, http: Bool = false) throws -> ChildProcess {
        var arguments = ["node", "--name", name, "--lease", "2s", "--heartbeat", "1s", "--reconcile", "10m", "--connections", "10"]
        if http { arguments += ["--http", "127.0.0.1:0", "--journal", bouncer.directory + "/journal-" + name] }
        return try ChildProcess(depotExecutable.path, arguments, environment: cluster.pooledEnvironment(through: bouncer))
    }

    /// Waits until node `name` has registered and LISTENs on its direct connection.
    static func listening(_ cluster: Cluster, node name: String) async throws -> Bool {
        try await eventually(timeout: .seconds(20)) {
            let registered = try await cluster.integer("SELECT count(*) FROM depot.nodes WHERE name = '\(name)'") == 1
            let listeners = try await cluster.integer("""
                SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN "depot_messages"'
                """)
            return registered && listeners >= 1
        }
    }

    /// The port a node started with `http: true` says it listens on.
    static func httpPort(of node: ChildProcess) async throws -> Int {
        var port: Int?
        _ = try await eventually {
            if let range = node.stderr.range(of: "HTTP on 127.0.0.1:") { port = Int(node.stderr[range.upperBound...].prefix { $0.isNumber }) }
            return port != nil
        }
        return try #require(port, "the node never said where it listens: \(node.stderr)")
    }

    /// The node's warnings and errors: a node working through PgBouncer as it should has none
    /// (a statement failing there is logged and retried, so it would not show otherwise).
    static func complaints(_ node: ChildProcess) -> [Substring] {
        node.stderr.split(separator: "\n").filter { $0.contains(" warn [") || $0.contains(" error [") }
    }

    @Test("the demo's flow through PgBouncer: library and HTTP producers store 300 messages, a node drains them, each delivered once")
    func demoFlow() async throws {
        let cluster = try await Cluster.fresh()
        let (echo, endpoint) = try Cluster.echo(.init(delayMilliseconds: 1))
        defer { echo.stop() }
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('orders'), ('audit');
            INSERT INTO depot.endpoints (name, url) VALUES ('backend', '\(endpoint)');
            """)
        try await PgBouncer.with(poolSize: 2) { bouncer in
            let node = try Self.startNode("node-a", cluster, through: bouncer, http: true)
            defer { node.signal(SIGKILL); node.cleanUp() }
            #expect(try await Self.listening(cluster, node: "node-a"), "\(node.stderr)")
            let port = try await Self.httpPort(of: node)
            try await cluster.sql("""
                INSERT INTO depot.processors (name, kind, store, target_endpoint, interval_ms, batch_size, member_count)
                VALUES ('forwarder', 'forwarding', 'orders', 'backend', 0, 10, 3)
                """)

            // Producers: 100 one at a time from 10 tasks and 100 in one batch through a pool of 8
            // clients, and 100 POSTs to the node's ingress, which stores through the node's pool.
            let producerPool = cluster.pooledPool(through: bouncer, maximumConnections: 8)
            let orders = PostgresStore(name: "orders", pool: producerPool)
            var ids: [UUID] = try await withThrowingTaskGroup(of: [UUID].self) { group in
                for task in 0..<10 {
                    group.addTask {
                        var ids: [UUID] = []
                        for index in 0..<10 { ids.append(try await orders.store(OutgoingMessage(text: "one-\(task)-\(index)")).id) }
                        return ids
                    }
                }
                group.addTask { try await orders.store((0..<100).map { OutgoingMessage(text: "batch-\($0)") }).map(\.id) }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            let client = HTTPClient()
            let base = URL(string: "http://127.0.0.1:\(port)")!
            for index in 0..<100 {
                let response = try await client.send(HTTPRequest(method: "POST", target: "/stores/orders/messages",
                                                                 headers: ["Content-Type": "text/plain"], body: Data("http-\(index)".utf8)),
                                                     to: base.appendingPathComponent("stores/orders/messages"), timeout: .seconds(10))
                #expect(response.status == 202, "\(String(decoding: response.body, as: UTF8.self))")
                let answer = try JSONSerialization.jsonObject(with: response.body) as? [String: Any]
                if let id = (answer?["id"] as? String).flatMap(UUID.init(uuidString:)) { ids.append(id) }
            }
            #expect(ids.count == 300)

            let all = try await eventually(timeout: .seconds(60)) { echo.snapshot().distinct == 300 }
            #expect(all, "delivered: \(echo.snapshot().distinct); node: \(node.stderr.suffix(800))")
            #expect(Set(echo.snapshot().byMessage.keys) == Set(ids.map { $0.uuidString.lowercased() }))
            #expect(echo.snapshot().requests == 300, "every message delivered once")

            // A processor added now starts only if the node hears the row change: with a 10-minute
            // reconcile, only its LISTEN on the direct connection tells it.
            try await cluster.sql("""
                INSERT INTO depot.processors (name, kind, store, target_endpoint, interval_ms)
                VALUES ('auditor', 'forwarding', 'audit', 'backend', 0)
                """)
            let audit = try await PostgresStore(name: "audit", pool: producerPool).store(OutgoingMessage(text: "audit")).id
            let heard = try await eventually(timeout: .seconds(30)) { echo.snapshot().byMessage[audit.uuidString.lowercased()] == 1 }
            #expect(heard, "the node never started the processor added after it started: \(node.stderr.suffix(800))")

            // The traffic went through PgBouncer (two server connections for all those clients).
            // SHOW STATS totals are refreshed every stats_period (1 s here): wait for the next.
            #expect(try await eventually(timeout: .seconds(10)) { try await bouncer.transactions(database: cluster.databaseName) > 300 })
            node.signal(SIGTERM)
            #expect(await node.wait() == 0, "\(node.stderr.suffix(800))")
            #expect(Self.complaints(node).isEmpty, "\(Self.complaints(node).prefix(5))")
            #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 0)
            await producerPool.close()
        }
    }

    @Test("kill -9 of a node mid-delivery through PgBouncer: a second node delivers all 1,000 messages")
    func killNineLosesNothing() async throws {
        let cluster = try await Cluster.fresh()
        let (echo, endpoint) = try Cluster.echo(.init(delayMilliseconds: 2))
        defer { echo.stop() }
        try await NodeBehaviourTests.forwarding(cluster, url: endpoint) { $0.intervalMilliseconds = 0; $0.batchSize = 10; $0.memberCount = 2 }
        try await PgBouncer.with(poolSize: 2) { bouncer in
            let producerPool = cluster.pooledPool(through: bouncer, maximumConnections: 4)
            let ids = try await PostgresStore(name: "orders", pool: producerPool)
                .store((0..<1000).map { OutgoingMessage(text: "m\($0)") }).map(\.id)
            await producerPool.close()
            let nodeA = try Self.startNode("node-a", cluster, through: bouncer)
            defer { nodeA.signal(SIGKILL); nodeA.cleanUp() }
            let heldWhenKilled = try await cluster.killWhileHoldingLease(nodeA, node: "node-a")
            #expect(heldWhenKilled, "node-a never held a lease: \(nodeA.stderr.suffix(800))")
            let nodeB = try Self.startNode("node-b", cluster, through: bouncer)
            defer { nodeB.signal(SIGKILL); nodeB.cleanUp() }
            let all = try await eventually(timeout: .seconds(60)) { echo.snapshot().distinct == 1000 }
            #expect(all, "distinct ids delivered: \(echo.snapshot().distinct); node-b: \(nodeB.stderr.suffix(800))")
            #expect(Set(echo.snapshot().byMessage.keys) == Set(ids.map { $0.uuidString.lowercased() }))
            let empty = try await eventually(timeout: .seconds(10)) { try await cluster.integer("SELECT count(*) FROM depot.messages") == 0 }
            #expect(empty)
            nodeB.signal(SIGTERM)
            #expect(await nodeB.wait() == 0, "\(nodeB.stderr.suffix(800))")
            #expect(Self.complaints(nodeB).isEmpty, "\(Self.complaints(nodeB).prefix(5))")
        }
    }

    @Test("HTTP consumers through PgBouncer: claim, ack, release and a waiting claim, all on a node's pooled connections")
    func httpConsumers() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        try await PgBouncer.with(poolSize: 2) { bouncer in
            let producerPool = cluster.pooledPool(through: bouncer, maximumConnections: 2)
            let orders = PostgresStore(name: "orders", pool: producerPool)
            let ids = try await orders.store((0..<3).map { OutgoingMessage(text: "m\($0)") }).map { $0.id.uuidString.lowercased() }
            let node = try Self.startNode("node-a", cluster, through: bouncer, http: true)
            defer { node.signal(SIGKILL); node.cleanUp() }
            #expect(try await Self.listening(cluster, node: "node-a"), "\(node.stderr)")
            let http = HTTPConsumerTests.Consumer(port: try await Self.httpPort(of: node))

            let first = try await http.claim("orders", #"{"consumer":"worker-a","limit":2,"lease_ms":30000}"#)
            #expect(first.map(\.id) == Array(ids.prefix(2)))
            #expect(try await http.act("orders", "acks", #"{"consumer":"worker-a","ids":["\#(ids[0])"]}"#).acked == [ids[0]])
            #expect(try await http.act("orders", "releases", #"{"consumer":"worker-a","id":"\#(ids[1])","error":"busy"}"#).released == [ids[1]])
            let second = try await http.claim("orders", #"{"consumer":"worker-b","limit":10}"#)
            #expect(second.map(\.id) == [ids[1], ids[2]])
            #expect(second.first?.attempts == 2)
            #expect(second.first?.last_error == "busy")
            #expect(try await http.act("orders", "acks", #"{"consumer":"worker-b","ids":["\#(ids[1])","\#(ids[2])"]}"#).acked?.sorted() == [ids[1], ids[2]].sorted())

            // Four consumers at once, each claiming 5 and acking them, until 40 messages are gone:
            // each acked once, on whichever server connections PgBouncer gives the node's pool.
            let batch = Set(try await orders.store((0..<40).map { OutgoingMessage(text: "b\($0)") }).map { $0.id.uuidString.lowercased() })
            let acked = try await withThrowingTaskGroup(of: [String].self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        var mine: [String] = []
                        while true {
                            let claimed = try await http.claim("orders", #"{"consumer":"w\#(worker)","limit":5}"#).map(\.id)
                            if claimed.isEmpty { return mine }
                            let list = claimed.map { "\"\($0)\"" }.joined(separator: ",")
                            mine += try await http.act("orders", "acks", #"{"consumer":"w\#(worker)","ids":[\#(list)]}"#).acked ?? []
                        }
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(acked.count == 40)
            #expect(Set(acked) == batch)

            // A claim waiting on an empty store gets the message stored while it waits.
            let waiting = Task { try await http.claim("orders", #"{"consumer":"waiter","wait_ms":20000}"#, timeout: .seconds(30)) }
            #expect(try await eventually { try await http.waitingClaims() == 1 })
            let late = try await orders.store(OutgoingMessage(text: "late")).id.uuidString.lowercased()
            #expect(try await waiting.value.map(\.id) == [late])
            #expect(try await http.act("orders", "acks", #"{"consumer":"waiter","ids":["\#(late)"]}"#).acked == [late])
            #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 0)

            node.signal(SIGTERM)
            #expect(await node.wait() == 0, "\(node.stderr.suffix(800))")
            #expect(Self.complaints(node).isEmpty, "\(Self.complaints(node).prefix(5))")
            await producerPool.close()
        }
    }

    @Test("the CLI through PgBouncer, without a LISTEN URL: depot migrate on an empty database, stores add, store, stats")
    func cliVerbs() async throws {
        let database = try await TestDatabase.createEmpty(prefix: "pgb")
        try await PgBouncer.with(poolSize: 2) { bouncer in
            let environment = ["DEPOT_DATABASE_URL": bouncer.url(for: database.connectionString), "DEPOT_DATABASE_POOL_MODE": "transaction"]
            func depot(_ arguments: String...) async throws -> ProcessOutput {
                let output = try await runProcess(depotExecutable, arguments, environment: environment, removing: ["DEPOT_LISTEN_DATABASE_URL"])
                #expect(output.status == 0, "depot \(arguments.joined(separator: " ")): \(output.stderr)")
                return output
            }
            _ = try await depot("migrate")
            _ = try await depot("stores", "add", "orders")
            for index in 0..<3 { _ = try await depot("store", "orders", "--data", "m\(index)") }
            let stats = try await depot("stats", "--json")
            let rows = try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [[String: Any]] ?? []
            #expect(rows.first { $0["store"] as? String == "orders" }?["ready"] as? Int == 3, "\(stats.stdout)")
            let direct = try await Connection.connect(database)
            defer { direct.close() }
            #expect(try await direct.query("SELECT count(*) FROM depot.messages WHERE store = 'orders'").first?.decode(at: 0, as: Int.self) == 3)
            let databaseName = URLComponents(string: database.connectionString)!.path.dropFirst().description
            #expect(try await eventually(timeout: .seconds(10)) { try await bouncer.transactions(database: databaseName) > 5 })
        }
    }

    @Test("a node behind a transaction pool without DEPOT_LISTEN_DATABASE_URL stops at start with status 78 naming it")
    func noDirectListenConnection() async throws {
        let cluster = try await Cluster.fresh()
        try await PgBouncer.with(poolSize: 2) { bouncer in
            var environment = cluster.pooledEnvironment(through: bouncer)
            environment["DEPOT_LISTEN_DATABASE_URL"] = nil
            for extra in [[], ["--http", "127.0.0.1:0"]] {
                let output = try await runProcess(depotExecutable, ["node", "--name", "node-a"] + extra, environment: environment,
                                                  removing: ["DEPOT_LISTEN_DATABASE_URL"])
                #expect(output.status == 78, "\(output.stderr)")
                #expect(output.stderr.contains("DEPOT_DATABASE_POOL_MODE is transaction"), "\(output.stderr)")
                #expect(output.stderr.contains("set DEPOT_LISTEN_DATABASE_URL to a direct connection"), "\(output.stderr)")
                #expect(!output.stderr.contains("HTTP on"), "it must stop before listening: \(output.stderr)")
            }
            // The library's node refuses too, before it registers.
            let pool = cluster.pooledPool(through: bouncer, maximumConnections: 2)
            let error = await #expect(throws: PostgresError.self) { try await Node(Cluster.nodeConfiguration("node-b"), pool: pool).run() }
            #expect(error?.kind == .usage)
            #expect(try await cluster.integer("SELECT count(*) FROM depot.nodes") == 0)
            await pool.close()

            let wrong = try await runProcess(depotExecutable, ["node", "--name", "node-a"],
                                             environment: ["DEPOT_DATABASE_URL": bouncer.url(for: cluster.url), "DEPOT_DATABASE_POOL_MODE": "transactions"])
            #expect(wrong.status == 78)
            #expect(wrong.stderr.contains("DEPOT_DATABASE_POOL_MODE is \"transactions\", which is not a pool mode"), "\(wrong.stderr)")
        }
    }
}
