import Depot
import Foundation
import Postgres
import Testing
import TestSupport

/// Messages belong to declared stores. Migration 0006 keeps that rule with triggers checked once
/// per statement instead of a per-row foreign key (0023: a shared advisory lock instead of a row
/// lock in READ COMMITTED); these tests hold it to the same behaviour.
@Suite("Messages stay tied to declared stores")
struct StoreIntegrityTests {
    @Test("a direct INSERT into an undeclared store is refused and names the store")
    func directInsertIntoUndeclaredStore() async throws {
        let pool = try await TestDatabase.shared()
        let error = await #expect(throws: PostgresError.self) {
            try await pool.query("INSERT INTO depot.messages (store, payload) VALUES ('no-such-store', 'x')")
        }
        #expect(error?.sqlState == .foreignKeyViolation)
        #expect(error?.message.contains("no-such-store") == true, "\(String(describing: error))")
    }

    @Test("a store holding messages cannot be deleted; once purged it can")
    func deleteRefusedWhileMessagesRemain() async throws {
        let pool = try await TestDatabase.shared()
        let name = try await TestDatabase.declareStore(on: pool)
        _ = try await PostgresStore(name: name, pool: pool).store(OutgoingMessage(text: "still here"))
        let error = await #expect(throws: PostgresError.self) {
            try await pool.query("DELETE FROM depot.stores WHERE name = \(name)")
        }
        #expect(error?.sqlState == .foreignKeyViolation)
        try await pool.query("SELECT depot.purge_store(\(name))")
        #expect(try await pool.query("DELETE FROM depot.stores WHERE name = \(name)").affectedRows == 1)
    }

    @Test("renaming a store carries its messages along")
    func renameCascades() async throws {
        let pool = try await TestDatabase.shared()
        let name = try await TestDatabase.declareStore(on: pool)
        let id = try await PostgresStore(name: name, pool: pool).store(OutgoingMessage(text: "follow me")).id
        let renamed = name + "-renamed"
        try await pool.query("UPDATE depot.stores SET name = \(renamed) WHERE name = \(name)")
        #expect(try await PostgresStore(name: renamed, pool: pool).peek(limit: 5).map(\.id) == [id])
        #expect(try await PostgresStore(name: name, pool: pool).peek(limit: 5).isEmpty)
    }

    @Test("moving a message into an undeclared store is refused and the message stays")
    func moveToUndeclaredStore() async throws {
        let pool = try await TestDatabase.shared()
        let source = PostgresStore(name: try await TestDatabase.declareStore(on: pool), pool: pool)
        _ = try await source.store(OutgoingMessage(text: "stay"))
        let claimed = try #require(try await source.claim(limit: 1, consumer: "c", lease: .seconds(30)).first)
        let error = await #expect(throws: StoreError.self) {
            try await source.move(claimed, consumer: "c", to: PostgresStore(name: "nowhere-\(UUID())", pool: pool))
        }
        #expect(error?.code == .undeclaredStore)
        #expect(try await source.counts().inFlight == 1)
    }

    @Test("a store cannot be deleted under a transaction that is adding messages to it")
    func deleteWaitsForAnInsertingTransaction() async throws {
        let pool = try await TestDatabase.shared()
        let name = try await TestDatabase.declareStore(on: pool)
        let store = PostgresStore(name: name, pool: pool)
        let deleter = ConnectionPool(pool.configuration, maximumConnections: 1)
        let watcher = ConnectionPool(pool.configuration, maximumConnections: 1)
        defer { Task { await deleter.close(); await watcher.close() } }

        let deletion = try await pool.withTransaction { connection in
            _ = try await store.store([OutgoingMessage(text: "in flight")], on: connection)
            // The delete must wait for this transaction: its messages are not committed yet.
            let deletion = Task {
                try await deleter.query("DELETE FROM depot.stores WHERE name = \(name)")
            }
            let waits = try await Self.someoneWaitsOnALock(running: "%DELETE FROM depot.stores%", seen: watcher)
            #expect(waits, "the DELETE should wait for the inserting transaction")
            return deletion
        }
        let error = await #expect(throws: PostgresError.self) { try await deletion.value }
        #expect(error?.sqlState == .foreignKeyViolation)
        #expect(try await store.counts().ready == 1)
    }

    @Test("an INSERT waits for a store's deletion on its way, and is refused once it commits")
    func insertWaitsForADeletingTransaction() async throws {
        let pool = try await TestDatabase.shared()
        let name = try await TestDatabase.declareStore(on: pool)
        let inserter = ConnectionPool(pool.configuration, maximumConnections: 1)
        let watcher = ConnectionPool(pool.configuration, maximumConnections: 1)
        defer { Task { await inserter.close(); await watcher.close() } }

        let insertion = try await pool.withTransaction { connection in
            try await connection.execute("DELETE FROM depot.stores WHERE name = \(name)")
            let insertion = Task {
                try await inserter.query("INSERT INTO depot.messages (store, payload) VALUES (\(name), 'late')")
            }
            let waits = try await Self.someoneWaitsOnALock(running: "INSERT INTO depot.messages%", seen: watcher)
            #expect(waits, "the INSERT should wait for the deleting transaction")
            return insertion
        }
        let error = await #expect(throws: PostgresError.self) { try await insertion.value }
        #expect(error?.sqlState == .foreignKeyViolation)
        #expect(error?.message.contains(name) == true, "\(String(describing: error))")
        #expect(try await pool.query("SELECT 1 FROM depot.messages WHERE store = \(name)").count == 0)
    }

    @Test("a store renamed under an inserting transaction takes that transaction's messages along")
    func renameWaitsForAnInsertingTransaction() async throws {
        let pool = try await TestDatabase.shared()
        let name = try await TestDatabase.declareStore(on: pool)
        let renamed = name + "-renamed"
        let renamer = ConnectionPool(pool.configuration, maximumConnections: 1)
        let watcher = ConnectionPool(pool.configuration, maximumConnections: 1)
        defer { Task { await renamer.close(); await watcher.close() } }

        let rename = try await pool.withTransaction { connection in
            try await connection.execute("INSERT INTO depot.messages (store, payload) VALUES (\(name), 'in flight')")
            let rename = Task { try await renamer.query("UPDATE depot.stores SET name = \(renamed) WHERE name = \(name)") }
            let waits = try await Self.someoneWaitsOnALock(running: "UPDATE depot.stores%", seen: watcher)
            #expect(waits, "the rename should wait for the inserting transaction")
            return rename
        }
        _ = try await rename.value
        #expect(try await PostgresStore(name: renamed, pool: pool).counts().ready == 1)
        #expect(try await pool.query("SELECT 1 FROM depot.messages WHERE store = \(name)").count == 0)
    }

    @Test("outside READ COMMITTED an insert still checks and keeps its store")
    func repeatableReadInsertIsChecked() async throws {
        let pool = try await TestDatabase.shared()
        let name = try await TestDatabase.declareStore(on: pool)
        try await pool.withTransaction { connection in
            try await connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            try await connection.execute("INSERT INTO depot.messages (store, payload) VALUES (\(name), 'rr')")
        }
        #expect(try await pool.query("SELECT 1 FROM depot.messages WHERE store = \(name)").count == 1)
        let error = await #expect(throws: PostgresError.self) {
            try await pool.withTransaction { connection in
                try await connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                try await connection.execute("INSERT INTO depot.messages (store, payload) VALUES ('no-such-store-rr', 'x')")
            }
        }
        #expect(error?.sqlState == .foreignKeyViolation)
    }

    /// Whether a session running a statement LIKE `pattern` comes to wait on a lock (a row's or
    /// an advisory one), as `watcher` sees in pg_stat_activity.
    private static func someoneWaitsOnALock(running pattern: String, seen watcher: ConnectionPool) async throws -> Bool {
        try await eventually {
            try await watcher.query("""
                SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE \(pattern)
                """).count == 1
        }
    }
}
