import Depot
import Foundation
import Postgres
import Testing
import TestSupport

/// The admin verbs of the real `depot` binary: processors, processor, dead-letters, peek, nodes,
/// and the depth columns of stores and stats.
@Suite("Admin verbs of the depot command line")
struct AdminCLITests {
    /// A fresh database with store `orders`, an endpoint and an inactive-able processor, and a pool on it.
    static func prepared() async throws -> (DepotCLI, ConnectionPool) {
        let cli = try await DepotCLI.fresh()
        let pool = ConnectionPool(ConnectionConfiguration(cli.databaseURL), maximumConnections: 4)
        try await pool.withConnection { connection in
            try await connection.executeUnsafeScript("""
                INSERT INTO depot.stores (name) VALUES ('orders');
                INSERT INTO depot.endpoints (name, url) VALUES ('backend', 'http://127.0.0.1:9/in');
                INSERT INTO depot.processors (name, kind, store, target_endpoint) VALUES ('forwarder', 'forwarding', 'orders', 'backend');
                """)
        }
        return (cli, pool)
    }

    static func json(_ output: ProcessOutput) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(output.stdout.utf8))
    }

    /// Runs and checks a refusal: the exit status, one line on standard error mentioning `mentions`.
    static func expectRefusal(_ cli: DepotCLI, _ arguments: [String], status: Int32, mentions: String,
                              sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let output = try await runProcess(DepotCLI.binary, arguments, environment: ["DEPOT_DATABASE_URL": cli.databaseURL])
        let label = "depot " + arguments.joined(separator: " ")
        #expect(output.status == status, "\(label) exited \(output.status): \(output.stderr)", sourceLocation: sourceLocation)
        #expect(output.stderr.hasPrefix("depot: ") && output.stderr.split(separator: "\n").count == 1,
                "\(label): \(output.stderr)", sourceLocation: sourceLocation)
        #expect(output.stderr.contains(mentions), "\(label) should mention '\(mentions)': \(output.stderr)", sourceLocation: sourceLocation)
    }

    @Test("processor deactivate/activate change what depot processors shows; unknown names exit 65, bad arguments 64")
    func processorVerbs() async throws {
        let (cli, pool) = try await Self.prepared()
        defer { Task { await pool.close() } }
        let table = try await cli.run("processors")
        #expect(table.status == 0)
        #expect(table.stdout.hasPrefix("NAME"))
        #expect(table.stdout.contains("forwarder") && table.stdout.contains("yes"))

        let off = try await cli.run("processor", "deactivate", "forwarder", "--reason", "billing maintenance")
        #expect(off.status == 0 && off.stdout == "deactivated processor forwarder\n", "\(off)")
        let again = try await cli.run("processor", "deactivate", "forwarder")
        #expect(again.status == 0 && again.stdout.contains("already inactive"))
        let listed = try await cli.run("processors", "--json")
        let rows = try #require(try Self.json(listed) as? [[String: Any]])
        let row = try #require(rows.first { $0["name"] as? String == "forwarder" })
        #expect(row["active"] as? Bool == false)
        #expect(row["deactivated_reason"] as? String == "billing maintenance")
        #expect(row["delivered_5m"] as? Int == 0 && row["nodes"] as? [String: Int] == [:])
        #expect(try await cli.run("processors").stdout.contains("no: billing maintenance"))

        let on = try await cli.run("processor", "activate", "forwarder")
        #expect(on.status == 0 && on.stdout == "activated processor forwarder\n")
        #expect(try await ProcessorAdmin(pool: pool).status().first?.active == true)

        try await Self.expectRefusal(cli, ["processor", "activate", "nope"], status: 65, mentions: "processor \"nope\" does not exist")
        try await Self.expectRefusal(cli, ["processor", "deactivate", "nope"], status: 65, mentions: "depot processors")
        try await Self.expectRefusal(cli, ["processor", "frobnicate", "forwarder"], status: 64, mentions: "activate|deactivate")
        try await Self.expectRefusal(cli, ["processor", "activate"], status: 64, mentions: "missing argument")
        try await Self.expectRefusal(cli, ["processor", "activate", "forwarder", "--reason", "x"], status: 64, mentions: "deactivate only")
        try await Self.expectRefusal(cli, ["processors", "extra"], status: 64, mentions: "unexpected argument")
    }

    @Test("peek shows the next messages in delivery order; -n, -nN and --limit; --json; bad limits and stores refused")
    func peekVerb() async throws {
        let (cli, pool) = try await Self.prepared()
        defer { Task { await pool.close() } }
        let store = PostgresStore(name: "orders", pool: pool)
        var urgent = OutgoingMessage(text: "urgent\nsecond line")
        urgent.priority = 9
        let ids = try await store.store([OutgoingMessage(text: "one"), OutgoingMessage(text: "two"), urgent]).map(\.id)

        let table = try await cli.run("peek", "orders", "-n", "2")
        #expect(table.status == 0)
        let lines = table.stdout.split(separator: "\n")
        #expect(lines.count == 3, "\(table.stdout)")
        #expect(lines.first?.hasPrefix("ID") == true)
        #expect(lines[1].contains(ids[2].uuidString.lowercased()) && lines[1].contains("urgent\\nsecond line"))
        #expect(lines[2].contains(ids[0].uuidString.lowercased()) && lines[2].contains("ready"))
        #expect(try await cli.run("peek", "orders", "-n1").stdout.split(separator: "\n").count == 2)
        #expect(try await cli.run("peek", "orders", "--limit=3").stdout.split(separator: "\n").count == 4)

        let json = try await cli.run("peek", "orders", "--json")
        let messages = try #require(try Self.json(json) as? [[String: Any]])
        #expect(messages.compactMap { ($0["id"] as? String).flatMap(UUID.init(uuidString:)) } == [ids[2], ids[0], ids[1]])
        #expect(messages.map { $0["preview"] as? String } == ["urgent\nsecond line", "one", "two"])
        #expect(messages.first?["state"] as? String == "ready" && messages.first?["priority"] as? Int == 9)

        try await Self.expectRefusal(cli, ["peek", "nowhere"], status: 65, mentions: "store \"nowhere\" is not declared")
        try await Self.expectRefusal(cli, ["peek", "orders", "-n", "0"], status: 64, mentions: "--limit must be a whole number from 1 to 10000")
        try await Self.expectRefusal(cli, ["peek", "orders", "-n"], status: 64, mentions: "needs a value")
        try await Self.expectRefusal(cli, ["peek", "orders", "-x"], status: 64, mentions: "unknown option -x")
        try await Self.expectRefusal(cli, ["peek", "orders", "-x5"], status: 64, mentions: "unknown option -x5")
        try await Self.expectRefusal(cli, ["peek"], status: 64, mentions: "missing argument")
    }

    @Test("dead-letters list, resend and purge, by store and id, with counts; purge needs a filter")
    func deadLetterVerbs() async throws {
        let (cli, pool) = try await Self.prepared()
        defer { Task { await pool.close() } }
        let store = PostgresStore(name: "orders", pool: pool)
        let ids = try await store.store((0..<3).map { OutgoingMessage(text: "m\($0)") }).map(\.id)
        for message in try await store.claim(limit: 3, consumer: "node-a/forwarder/0", lease: .seconds(30)) {
            try await store.deadLetter(message.id, consumer: "node-a/forwarder/0", reason: DeadLetterReason(
                "attempts exhausted", lastError: "endpoint backend answered 503", statusCode: 503, processor: "forwarder", node: "node-a"))
        }

        let table = try await cli.run("dead-letters")
        #expect(table.status == 0)
        #expect(table.stdout.hasPrefix("ID"))
        #expect(table.stdout.split(separator: "\n").count == 4)
        #expect(table.stdout.contains("attempts exhausted") && table.stdout.contains("503") && table.stdout.contains("node-a"))
        let listed = try await cli.run("dead-letters", "list", "--store", "orders", "--json")
        let letters = try #require(try Self.json(listed) as? [[String: Any]])
        #expect(Set(letters.compactMap { ($0["id"] as? String).flatMap(UUID.init(uuidString:)) }) == Set(ids))
        #expect(letters.first?["processor"] as? String == "forwarder" && letters.first?["status_code"] as? Int == 503)
        #expect(letters.first?["dead_at"] is String)

        let resent = try await cli.run("dead-letters", "resend", "--id", ids[0].uuidString)
        #expect(resent.status == 0 && resent.stdout == "resent 1 dead letter\n", "\(resent)")
        let stats = try #require(try Self.json(try await cli.run("stats", "--json")) as? [[String: Any]])
        #expect(stats.first?["ready"] as? Int == 1 && stats.first?["dead_letters"] as? Int == 2 && stats.first?["estimated"] as? Bool == false)
        let stores = try await cli.run("stores")
        #expect(stores.stdout.contains("READY") && stores.stdout.contains("IN FLIGHT"))

        let missing = try await cli.run("dead-letters", "resend", "--id", ids[0].uuidString)
        #expect(missing.status == 0 && missing.stdout == "resent 0 dead letters\n" && missing.stderr.contains("matched no dead letter"))
        try await Self.expectRefusal(cli, ["dead-letters", "purge"], status: 64, mentions: "--all")
        try await Self.expectRefusal(cli, ["dead-letters", "resend", "--id", "not-a-uuid"], status: 64, mentions: "--id must be a message id")
        try await Self.expectRefusal(cli, ["dead-letters", "resend", "--store", "nowhere"], status: 65, mentions: "not declared")
        try await Self.expectRefusal(cli, ["dead-letters", "list", "--all"], status: 64, mentions: "purge only")
        try await Self.expectRefusal(cli, ["dead-letters", "bury"], status: 64, mentions: "list, resend or purge")
        let purged = try await cli.run("dead-letters", "purge", "--store", "orders")
        #expect(purged.status == 0 && purged.stdout == "purged 2 dead letters\n")
        #expect((try Self.json(try await cli.run("dead-letters", "--json")) as? [Any])?.isEmpty == true)
    }

    @Test("nodes shows a running node alive with its processors, as a table and JSON")
    func nodesVerb() async throws {
        let (cli, pool) = try await Self.prepared()
        defer { Task { await pool.close() } }
        let empty = try await cli.run("nodes")
        #expect(empty.status == 0 && empty.stdout.hasPrefix("NAME"))
        let node = Node(Cluster.nodeConfiguration("node-a"), pool: pool)
        let running = Task { try await node.run() }
        let reported = try await eventually(timeout: .seconds(10)) {
            try await NodeCatalog(pool: pool).status().first?.processors == ["forwarder": 1]
        }
        #expect(reported)
        let json = try await cli.run("nodes", "--json")
        let nodes = try #require(try Self.json(json) as? [[String: Any]])
        #expect(nodes.count == 1)
        #expect(nodes.first?["name"] as? String == "node-a" && nodes.first?["alive"] as? Bool == true)
        #expect(nodes.first?["processors"] as? [String: Int] == ["forwarder": 1])
        #expect(nodes.first?["pid"] as? Int == Int(ProcessInfo.processInfo.processIdentifier))
        let table = try await cli.run("nodes")
        #expect(table.stdout.contains("node-a") && table.stdout.contains("yes") && table.stdout.contains("forwarder×1"))
        let processors = try await cli.run("processors")
        #expect(processors.stdout.contains("node-a×1"))
        await node.stop()
        try await running.value
    }

    @Test("every admin verb explains itself with --help and is listed in depot --help")
    func helpForAdminVerbs() async throws {
        let overview = try await runProcess(DepotCLI.binary, ["--help"])
        for verb in ["processors", "processor", "dead-letters", "peek", "nodes"] {
            #expect(overview.stdout.contains("  \(verb) "), "depot --help does not list \(verb)")
            let help = try await runProcess(DepotCLI.binary, [verb, "--help"])
            #expect(help.status == 0)
            #expect(help.stdout.contains("Usage: depot \(verb)"))
        }
        #expect(try await runProcess(DepotCLI.binary, ["peek", "--help"]).stdout.contains("-n, --limit N"))
        #expect(try await runProcess(DepotCLI.binary, ["processor", "--help"]).stdout.contains("--reason"))
    }
}
