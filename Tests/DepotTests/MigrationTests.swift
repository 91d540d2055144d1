import Depot
import Foundation
import Postgres
import Testing
import TestSupport

@Suite("Migrations")
struct MigrationTests {
    @Test("every file in migrations/ is compiled in, in order")
    func filesMatchTheList() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: packageRoot.appendingPathComponent("migrations").path)
            .filter { $0.hasSuffix(".sql") }.sorted()
        let listed = Migration.all.map { String(format: "%04d_%@.sql", $0.version, $0.name) }
        #expect(listed == files)
        // Strictly ascending; a number may be missing while the branch that holds it is open.
        #expect(zip(Migration.all, Migration.all.dropFirst()).allSatisfy { $0.version < $1.version })
        #expect(Migration.all.first?.version == 1)
        #expect(Migration.all.allSatisfy { !$0.sql.isEmpty })
    }

    @Test("migrate applies everything once; the second run is a no-op")
    func migrateTwice() async throws {
        let configuration = try await TestDatabase.createEmpty()
        let connection = try await Connection.connect(configuration)
        defer { connection.close() }
        let first = try await Migrator().migrate(on: connection)
        #expect(first.count == Migration.all.count)
        let second = try await Migrator().migrate(on: connection)
        #expect(second.isEmpty)
        let tables = try await connection.query("""
            SELECT tablename FROM pg_tables WHERE schemaname = 'depot' ORDER BY tablename
            """).map { try $0.decode(at: 0, as: String.self) }
        for table in ["dead_letters", "endpoints", "messages", "nodes", "processors", "schema_migrations", "stores"] {
            #expect(tables.contains(table), "missing table depot.\(table)")
        }
    }

    @Test("a node on a schema that lacks a migration, or has none, refuses to start and says to run depot migrate")
    func nodeOnAnOldSchema() async throws {
        let cluster = try await Cluster.fresh()
        let latest = try #require(Migration.all.last)
        try await cluster.sql("DELETE FROM depot.schema_migrations WHERE version = \(latest.version)")
        let error = await #expect(throws: SchemaBehind.self) {
            try await Node(Cluster.nodeConfiguration("node-old"), pool: cluster.pool).run()
        }
        #expect(error?.missing == [latest])
        #expect(error?.description.contains("\(latest.version) (\(latest.name))") == true)
        #expect(error?.description.contains("depot migrate") == true)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.nodes") == 0, "it never registered")

        let empty = ConnectionPool(try await TestDatabase.createEmpty(prefix: "e"), maximumConnections: 2)
        let none = await #expect(throws: SchemaBehind.self) {
            try await Node(Cluster.nodeConfiguration("node-none"), pool: empty).run()
        }
        #expect(none?.description.contains("no Depot schema") == true)
        await empty.close()

        // A schema ahead of the binary (a migration it does not know) is fine.
        try await cluster.sql("""
            INSERT INTO depot.schema_migrations (version, name) VALUES (\(latest.version), '\(latest.name)'), (9999, 'from_a_newer_depot')
            """)
        let connection = try await Connection.connect(cluster.pool.configuration)
        defer { connection.close() }
        try await Migrator().requireCurrent(on: connection)
    }

    @Test("four nodes migrating at the same moment apply each migration once")
    func concurrentMigrate() async throws {
        let configuration = try await TestDatabase.createEmpty()
        let applied = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    let connection = try await Connection.connect(configuration)
                    defer { connection.close() }
                    return try await Migrator().migrate(on: connection).count
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        // Each migration takes the lock in its own transaction, so the work may be shared among
        // the four; what matters is that every migration is applied exactly once.
        #expect(applied.reduce(0, +) == Migration.all.count, "applied per node: \(applied)")
        let connection = try await Connection.connect(configuration)
        defer { connection.close() }
        let versions = try await Migrator().appliedVersions(on: connection)
        #expect(versions == Set(Migration.all.map(\.version)))
    }
}
