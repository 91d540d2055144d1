@testable import Depot
import Foundation
import Postgres
import Testing
import TestSupport

/// Per-message operations (migration 0016): browse page by page, delete, retry now and move by
/// id, refusing what is being delivered unless forced; and the `depot messages` verbs.
@Suite("Operating on single messages")
struct MessageOperationsTests {
    @Test("browse pages through a store in delivery order by cursor, and filters by state and header")
    func browse() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let store = PostgresStore(name: "orders", pool: cluster.pool)
        var batch: [OutgoingMessage] = []
        for index in 0..<250 {
            var message = OutgoingMessage(text: "m\(index)", headers: index % 5 == 0 ? ["tenant": "acme"] : [:])
            message.priority = index % 50 == 0 ? 1 : 0
            if index % 10 == 3 { message.delay = .seconds(3600) }
            batch.append(message)
        }
        let ids = try await store.store(batch).map(\.id)
        let operations = MessageOperations(pool: cluster.pool)
        var seen: [BrowsedMessage] = []
        var cursor: String?
        while true {
            let page = try await operations.browse("orders", after: cursor, limit: 100)
            seen += page
            guard page.count == 100 else { break }
            cursor = page.last!.cursor
        }
        // Delivery order: the priority-1 messages first, then arrival; every one once.
        let expected = zip(ids, batch).enumerated().sorted { ($0.element.1.priority, -$0.offset) > ($1.element.1.priority, -$1.offset) }.map(\.element.0)
        #expect(seen.map(\.id) == expected)
        let delayed = try await operations.browse("orders", state: "delayed", limit: 1000)
        #expect(delayed.count == 25 && delayed.allSatisfy { $0.state == "delayed" })
        let acme = try await operations.browse("orders", headers: ["tenant": "acme"], limit: 1000)
        #expect(acme.count == 50 && acme.allSatisfy { $0.headers["tenant"] == "acme" })
        for (call, expected) in [
            ({ try await operations.browse("orders", state: "stuck") }, "state is 'stuck'"),
            ({ try await operations.browse("orders", after: "x; drop table") }, "is not one browse returned"),
            ({ try await operations.browse("nope") }, "store \"nope\" is not declared"),
        ] as [(() async throws -> [BrowsedMessage], String)] {
            let error = await #expect(throws: AdminError.self) { _ = try await call() }
            #expect(error?.description.contains(expected) == true, "\(error?.description ?? "no error")")
        }
    }

    @Test("delete, retry now and move refuse a message being delivered unless forced, and an id that is not a message; all or nothing")
    func operations() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders'), ('replay')")
        let store = PostgresStore(name: "orders", pool: cluster.pool)
        let ids = try await cluster.storeTexts("orders", count: 3)
        let leased = try #require(try await store.claim(limit: 1, consumer: "worker", lease: .seconds(60)).first)
        let operations = MessageOperations(pool: cluster.pool)

        let inUse = await #expect(throws: AdminError.self) { try await operations.delete(ids) }
        #expect(inUse?.code == .inUse && inUse?.description.contains("is being delivered") == true)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 3, "all or nothing")
        let missing = await #expect(throws: AdminError.self) { try await operations.retryNow([UUID()]) }
        #expect(missing?.code == .notFound)

        // Retry now: a delayed, tried message becomes ready with attempts 0; forced, the lease goes too.
        try await cluster.sql("UPDATE depot.messages SET available_at = now() + interval '1 hour', attempts = 3 WHERE id = '\(ids[1])'")
        #expect(try await operations.retryNow([ids[1]]) == 1)
        #expect(try await operations.retryNow([leased.id], force: true) == 1)
        let states = try await cluster.rows("SELECT attempts, available_at <= now(), locked_by IS NULL FROM depot.messages WHERE id IN ('\(ids[1])', '\(leased.id)')")
            .map { try $0.decode((Int, Bool, Bool).self) }
        #expect(states.count == 2 && states.allSatisfy { $0 == (0, true, true) })

        #expect(try await operations.move([ids[2]], to: "replay") == 1)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'replay' AND id = '\(ids[2])'") == 1)
        let undeclared = await #expect(throws: AdminError.self) { try await operations.move([ids[1]], to: "nope") }
        #expect(undeclared?.code == .notFound)
        #expect(try await operations.delete([ids[0], ids[1]]) == 2)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 1)
    }

    @Test("depot messages: browse as JSON with a next-page cursor, retry refused with exit 65 while delivered, forced through")
    func cli() async throws {
        let cli = try await DepotCLI.fresh()
        let pool = ConnectionPool(ConnectionConfiguration(cli.databaseURL), maximumConnections: 2)
        defer { Task { await pool.close() } }
        try await pool.query("INSERT INTO depot.stores (name) VALUES ('orders')")
        let store = PostgresStore(name: "orders", pool: pool)
        let ids = try await store.store((0..<5).map { OutgoingMessage(text: "m\($0)") }).map(\.id)
        let environment = ["DEPOT_DATABASE_URL": cli.databaseURL]
        let table = try await runProcess(DepotCLI.binary, ["messages", "browse", "orders", "-n", "2"], environment: environment)
        #expect(table.status == 0 && table.stdout.contains(ids[0].uuidString.lowercased()) && table.stdout.contains("next page: --after "), "\(table.stdout)\(table.stderr)")
        let cursor = String(table.stdout.split(separator: "\n").last!.split(separator: " ").last!)
        let json = try await runProcess(DepotCLI.binary, ["messages", "browse", "orders", "--after", cursor, "--json"], environment: environment)
        let page = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
        #expect(page?.compactMap { ($0["id"] as? String)?.lowercased() } == ids[2...].map { $0.uuidString.lowercased() }, "\(json.stdout)\(json.stderr)")

        _ = try await store.claim(limit: 1, consumer: "worker", lease: .seconds(60))
        try await AdminCLITests.expectRefusal(cli, ["messages", "retry", ids[0].uuidString], status: 65, mentions: "is being delivered")
        let forced = try await runProcess(DepotCLI.binary, ["messages", "retry", ids[0].uuidString, "--force"], environment: environment)
        #expect(forced.status == 0 && forced.stdout == "made ready 1 message\n", "\(forced.stdout)\(forced.stderr)")
        try await AdminCLITests.expectRefusal(cli, ["messages", "move", ids[1].uuidString], status: 64, mentions: "move needs --to STORE")
        try await AdminCLITests.expectRefusal(cli, ["messages", "delete", "not-an-id"], status: 64, mentions: "is not a message id")
    }
}
