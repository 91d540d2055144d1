import Depot
import DepotHTTP
import Foundation
import Postgres
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Migration 0018's roles, exercised by connecting as LOGIN members of each: what each may do,
/// what it may not, and producers limited to named stores.
@Suite("Role grants")
struct RoleGrantTests {
    /// The SQLSTATE of a statement that fails, or nil when it succeeds.
    static func sqlState(_ pool: ConnectionPool, _ text: String) async -> String? {
        do {
            try await pool.query(SQL(unsafeSQL: text))
            return nil
        } catch let error as PostgresError {
            return error.sqlState?.code ?? "no SQLSTATE: \(error)"
        } catch {
            return "\(error)"
        }
    }

    @Test("a depot_producer member stores through depot.store, store_batch and PostgresStore (1, 10 and a COPY-sized 100) but reads nothing")
    func producerStoresAndReadsNothing() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let producer = try await cluster.loginRole("producer", memberOf: [DepotRoles.producer])
        defer { Task { await producer.drop() } }
        try await cluster.sql("INSERT INTO depot.producer_stores (role, store) VALUES ('\(producer.name)', 'orders')")

        // SQL: depot.store with and without an idempotency key (the key path reads idempotency_keys).
        #expect(await Self.sqlState(producer.pool, "SELECT depot.store('orders', 'one')") == nil)
        let first: UUID = try await producer.pool.query("SELECT depot.store('orders', 'keyed', idempotency_key => 'k-1')").first!.decode(at: 0)
        let again: UUID = try await producer.pool.query("SELECT depot.store('orders', 'keyed', idempotency_key => 'k-1')").first!.decode(at: 0)
        #expect(first == again, "a retry with the same key answers the first message's id")

        // The Swift library: the direct INSERT and COPY are refused to this role, and it stores through store_batch.
        let store = PostgresStore(name: "orders", pool: producer.pool)
        _ = try await store.store(OutgoingMessage(text: "single"))
        _ = try await store.store((0..<10).map { OutgoingMessage(text: "ten-\($0)") })
        let copySized = try await store.store((0..<100).map { OutgoingMessage(text: "hundred-\($0)") })
        #expect(copySized.count == 100 && copySized.allSatisfy(\.created))
        let keyed = try await store.store([OutgoingMessage(payload: Data("k".utf8), idempotencyKey: "k-2"), OutgoingMessage(payload: Data("k".utf8), idempotencyKey: "k-2")])
        #expect(keyed[0].id == keyed[1].id && keyed[0].created && !keyed[1].created)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'orders'") == 1 + 1 + 1 + 10 + 100 + 1)

        // Nothing to read, and no way around the functions.
        for statement in ["SELECT count(*) FROM depot.messages", "SELECT count(*) FROM depot.idempotency_keys",
                          "SELECT count(*) FROM depot.stores", "SELECT count(*) FROM depot.dead_letters",
                          "SELECT count(*) FROM depot.producer_stores", "SELECT * FROM depot.store_stats",
                          "INSERT INTO depot.messages (store, payload) VALUES ('orders', 'x')",
                          "SELECT depot.hold_store('orders')",
                          "SELECT * FROM depot.store_batch_unchecked('orders', '{x}', '{\"{}\"}', '{null}', '{0}', '{0}', '{null}', '{null}', '{null}')"] {
            #expect(await Self.sqlState(producer.pool, statement) == "42501", "\(statement)")
        }
    }

    @Test("a producer limited to store A is refused store B with SQLSTATE 42D01 naming role and store; no row allows none, a NULL row every store")
    func producerLimitedToNamedStores() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('a'), ('b')")
        let limited = try await cluster.loginRole("limited", memberOf: [DepotRoles.producer])
        let unlisted = try await cluster.loginRole("unlisted", memberOf: [DepotRoles.producer])
        let everywhere = try await cluster.loginRole("everywhere", memberOf: [DepotRoles.producer])
        defer { Task { for role in [limited, unlisted, everywhere] { await role.drop() } } }
        try await cluster.sql("""
            INSERT INTO depot.producer_stores (role, store) VALUES ('\(limited.name)', 'a'), ('\(everywhere.name)', NULL);
            """)

        #expect(await Self.sqlState(limited.pool, "SELECT depot.store('a', 'fine')") == nil)
        do {
            _ = try await limited.pool.query("SELECT depot.store('b', 'refused')")
            Issue.record("store b was not refused")
        } catch let error as PostgresError {
            #expect(error.sqlState?.code == "42D01")
            #expect(error.message == "role \"\(limited.name)\" may not store into store \"b\"", "\(error.message)")
            #expect(error.hint?.contains("INSERT INTO depot.producer_stores") == true)
        }
        // Through the library: StoreError.notAllowed, for the direct path's fallback and for keyed messages alike.
        for message in [OutgoingMessage(text: "x"), OutgoingMessage(payload: Data("x".utf8), idempotencyKey: "k")] {
            let error = await #expect(throws: StoreError.self) { try await PostgresStore(name: "b", pool: limited.pool).store(message) }
            #expect(error?.code == .notAllowed && error?.description.contains("store \"b\"") == true, "\(String(describing: error))")
        }
        // A refused role learns nothing about the store, not even whether it exists.
        #expect(await Self.sqlState(limited.pool, "SELECT depot.store('no-such-store', 'x')") == "42D01")
        #expect(await Self.sqlState(unlisted.pool, "SELECT depot.store('a', 'x')") == "42D01", "no rows: no store")
        #expect(await Self.sqlState(everywhere.pool, "SELECT depot.store('a', 'x')") == nil)
        #expect(await Self.sqlState(everywhere.pool, "SELECT depot.store('b', 'x')") == nil)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'b'") == 1)
        // A row for a role that does not exist is refused rather than allowing nothing in silence.
        let missingRole = await Self.sqlState(cluster.pool, "INSERT INTO depot.producer_stores (role, store) VALUES ('nobody_like_this', 'a')")
        #expect(missingRole == "42704")
        // Operators can ask the same question the functions ask.
        let answers = try await cluster.rows("""
            SELECT depot.producer_may_store('\(limited.name)', 'a'), depot.producer_may_store('\(limited.name)', 'b')
            """).first!.decode((Bool, Bool).self)
        #expect(answers.0 && !answers.1)
    }

    @Test("a depot node running as a depot_node member takes HTTP messages (COPY and keyed too), delivers, dead-letters, deactivates, and no statement is refused")
    func nodeRoleRunsANode() async throws {
        let cluster = try await Cluster.fresh()
        let (good, goodURL) = try Cluster.echo()
        let (bad, badURL) = try Cluster.echo(.init(failRate: 1))
        defer { good.stop(); bad.stop() }
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('orders'), ('drops'), ('stops');
            INSERT INTO depot.endpoints (name, url) VALUES ('good', '\(goodURL)'), ('bad', '\(badURL)');
            INSERT INTO depot.processors (name, kind, store, target_endpoint, interval_ms, batch_size, rate_limit)
            VALUES ('to-good', 'forwarding', 'orders', 'good', 0, 10, 100000);
            INSERT INTO depot.processors (name, kind, store, target_endpoint, interval_ms, max_delivery_attempts, max_delivery_drop)
            VALUES ('drop-bad', 'forwarding', 'drops', 'bad', 0, 1, true), ('stop-bad', 'forwarding', 'stops', 'bad', 0, 1, false);
            """)
        let nodeRole = try await cluster.loginRole("node", memberOf: [DepotRoles.node])
        defer { Task { await nodeRole.drop() } }
        let node = try await cluster.startHTTPNodeProcess("node-r", environment: ["DEPOT_DATABASE_URL": nodeRole.url])
        defer { node.kill() }
        let client = HTTPClient()
        func post(_ path: String, _ body: String, _ headers: HTTPHeaders = [:]) async throws -> Int {
            try await client.send(HTTPRequest(method: "POST", target: path, headers: headers, body: Data(body.utf8)),
                                  to: URL(string: "http://127.0.0.1:\(node.port)\(path)")!, timeout: .seconds(10)).status
        }
        #expect(try await post("/stores/orders/messages", "plain") == 202)
        #expect(try await post("/stores/orders/messages", "keyed", ["Idempotency-Key": "k-1"]) == 202)
        #expect(try await post("/stores/orders/messages", "keyed", ["Idempotency-Key": "k-1"]) == 202)
        let batch = "[" + (0..<100).map { "{\"payload\": \"b\($0)\"}" }.joined(separator: ",") + "]"
        #expect(try await post("/stores/orders/messages/batch", batch, ["Content-Type": "application/json"]) == 202)
        #expect(try await post("/stores/drops/messages", "to the dead letters") == 202)
        #expect(try await post("/stores/stops/messages", "stops its processor") == 202)

        let settled = try await eventually(timeout: .seconds(30)) {
            try await cluster.integer("""
                SELECT ((SELECT count(*) FROM depot.messages WHERE store IN ('orders', 'drops')) = 0
                    AND (SELECT count(*) FROM depot.dead_letters WHERE store = 'drops') = 1
                    AND (SELECT count(*) FROM depot.processors WHERE name = 'stop-bad' AND NOT is_active) = 1)::int
                """) == 1
        }
        #expect(settled, "node stderr: \(node.child.stderr)")
        #expect(good.snapshot().distinct == 102)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.nodes WHERE name = 'node-r'") == 1)

        node.child.signal(SIGTERM)
        #expect(await node.child.wait() == 0, "\(node.child.stderr)")
        #expect(try await cluster.integer("SELECT count(*) FROM depot.nodes") == 0, "the node removed its own row")
        let stderr = node.child.stderr
        #expect(!stderr.contains("permission denied") && !stderr.contains("42501"), "\(stderr)")
        // VACUUM needs the table's owner: the node says so once and leaves it to autovacuum.
        #expect(stderr.contains("not vacuuming depot.messages"), "\(stderr)")

        // What it only reads, it cannot change.
        for statement in ["INSERT INTO depot.stores (name) VALUES ('x')", "UPDATE depot.endpoints SET url = 'http://x'",
                          "UPDATE depot.processors SET store = 'drops'", "INSERT INTO depot.producer_stores (role) VALUES ('\(nodeRole.name)')",
                          "DELETE FROM depot.schema_migrations", "CREATE TABLE depot.x (a int)"] {
            #expect(await Self.sqlState(nodeRole.pool, statement) == "42501", "\(statement)")
        }
    }

    @Test("a depot_admin member declares stores, endpoints and processors, limits producers and runs message operations, but cannot change the schema")
    func adminManagesRowsNotSchema() async throws {
        let cluster = try await Cluster.fresh()
        let admin = try await cluster.loginRole("admin", memberOf: [DepotRoles.admin])
        let producer = try await cluster.loginRole("producer", memberOf: [DepotRoles.producer])
        defer { Task { await admin.drop(); await producer.drop() } }

        try await StoreCatalog(pool: admin.pool).declare(StoreDefinition(name: "orders"))
        try await StoreCatalog(pool: admin.pool).declare(StoreDefinition(name: "parked"))
        let statements = [
            "INSERT INTO depot.endpoints (name, url) VALUES ('backend', 'http://127.0.0.1:9/in')",
            "INSERT INTO depot.processors (name, kind, store, target_endpoint, is_active) VALUES ('fwd', 'forwarding', 'orders', 'backend', false)",
            "UPDATE depot.processors SET member_count = 2, pinned_servers = '{node-a}' WHERE name = 'fwd'",
            "SELECT depot.activate_processor('fwd')",
            "SELECT depot.deactivate_processor('fwd')",
            "INSERT INTO depot.producer_stores (role, store) VALUES ('\(producer.name)', 'orders')",
            "UPDATE depot.settings SET idempotency_key_retention = '1 day'",
            "SELECT depot.store('orders', 'from the admin')",
            "SELECT * FROM depot.store_stats", "SELECT * FROM depot.processor_status", "SELECT * FROM depot.node_status",
            "SELECT * FROM depot.peek('orders')", "SELECT * FROM depot.browse('orders')",
        ]
        for statement in statements {
            #expect(await Self.sqlState(admin.pool, statement) == nil, "\(statement)")
        }
        // The producer it allowed can now store; message operations on what it stored.
        #expect(await Self.sqlState(producer.pool, "SELECT depot.store('orders', 'from the producer')") == nil)
        let ids: [UUID] = try await admin.pool.query("SELECT id FROM depot.messages ORDER BY seq").map { try $0.decode(at: 0) }
        #expect(ids.count == 2)
        #expect(try await admin.pool.query("SELECT depot.move_messages(\(ids), 'parked')").first?.decode(at: 0, as: Int.self) == 2)
        #expect(try await admin.pool.query("SELECT depot.retry_now(\([ids[0]]))").first?.decode(at: 0, as: Int.self) == 1)
        #expect(try await admin.pool.query("SELECT depot.delete_messages(\([ids[1]]))").first?.decode(at: 0, as: Int.self) == 1)
        #expect(try await admin.pool.query("SELECT depot.purge_store('parked')").first?.decode(at: 0, as: Int.self) == 1)
        #expect(try await StoreCatalog(pool: admin.pool).remove("parked"))

        for statement in ["CREATE TABLE depot.x (a int)", "ALTER TABLE depot.messages ADD COLUMN x int", "DROP TABLE depot.nodes",
                          "TRUNCATE depot.messages", "DELETE FROM depot.schema_migrations", "SELECT depot.grant_roles()"] {
            #expect(await Self.sqlState(admin.pool, statement) == "42501", "\(statement)")
        }
    }

    @Test("every table and view of the schema is granted to depot_admin, and to depot_node when a node reads it: a new table cannot be forgotten")
    func everyTableIsGranted() async throws {
        let cluster = try await Cluster.fresh()
        let ungranted = try await cluster.rows("""
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'depot' AND c.relkind IN ('r', 'v', 'p')
              AND NOT has_table_privilege('depot_admin', c.oid, 'SELECT')
            ORDER BY 1
            """).map { try $0.decode(at: 0, as: String.self) }
        #expect(ungranted.isEmpty, "tables depot_admin cannot read: \(ungranted); add them to depot.grant_roles() in a new migration")
        // Every table but the producers' limits is one the node reads.
        let nodeCannotRead = try await cluster.rows("""
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'depot' AND c.relkind IN ('r', 'v', 'p') AND c.relname <> 'producer_stores'
              AND NOT has_table_privilege('depot_node', c.oid, 'SELECT')
            ORDER BY 1
            """).map { try $0.decode(at: 0, as: String.self) }
        #expect(nodeCannotRead.isEmpty, "tables depot_node cannot read: \(nodeCannotRead)")
        // Run again (as the owner, after roles were made by hand): no error, the same roles.
        let again: [String] = try await cluster.rows("SELECT depot.grant_roles()").first!.decode(at: 0)
        #expect(again == DepotRoles.all)
    }
}
