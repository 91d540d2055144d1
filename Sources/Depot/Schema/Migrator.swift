import Postgres

/// Applies pending migrations, in order, each in its own transaction.
///
/// Safe when several nodes run it at once: every transaction first takes the same transaction
/// advisory lock, so one node applies a migration while the others wait and then find it
/// recorded. (A transaction lock, not a session lock: it cannot outlive a lost connection.)
/// Running it again is a no-op.
public struct Migrator: Sendable {
    public let migrations: [Migration]

    public init(migrations: [Migration] = Migration.all) {
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// The advisory lock key every `depot migrate` takes ("DEPOT_MI" as a number).
    static let lockKey = 0x4445_504F_545F_4D49

    /// Applies what is pending and returns what it applied (empty when up to date).
    @discardableResult
    public func migrate(on connection: Connection) async throws -> [Migration] {
        try await connection.transaction { connection in
            try await connection.execute("SELECT pg_advisory_xact_lock(\(Self.lockKey))")
            try await connection.executeUnsafeScript("""
                CREATE SCHEMA IF NOT EXISTS depot;
                CREATE TABLE IF NOT EXISTS depot.schema_migrations (
                    version    integer PRIMARY KEY,
                    name       text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                );
                """)
        }
        var applied: [Migration] = []
        for migration in migrations where try await apply(migration, on: connection) {
            applied.append(migration)
        }
        return applied
    }

    /// Versions already applied to this database.
    public func appliedVersions(on connection: Connection) async throws -> Set<Int> {
        let exists = try await connection.query("SELECT to_regclass('depot.schema_migrations') IS NOT NULL")
        guard try exists.first?.decode(at: 0, as: Bool.self) == true else { return [] }
        let rows = try await connection.query("SELECT version FROM depot.schema_migrations")
        return Set(try rows.map { try $0.decode(at: 0, as: Int.self) })
    }

    /// Throws `SchemaBehind` when a migration this binary knows is not applied: a node on an
    /// older schema would fail statement by statement, on functions and columns it lacks.
    /// A schema newer than the binary is fine (migrations only add; older nodes keep working
    /// while a cluster is upgraded).
    public func requireCurrent(on connection: Connection) async throws {
        let applied = try await appliedVersions(on: connection)
        let missing = migrations.filter { !applied.contains($0.version) }
        guard missing.isEmpty else { throw SchemaBehind(missing: missing, applied: applied) }
    }

    /// Applies one migration unless it is recorded already; returns whether it applied it.
    private func apply(_ migration: Migration, on connection: Connection) async throws -> Bool {
        do {
            return try await connection.transaction { connection in
                try await connection.execute("SELECT pg_advisory_xact_lock(\(Self.lockKey))")
                let done = try await connection.query(
                    "SELECT 1 FROM depot.schema_migrations WHERE version = \(Int32(migration.version))")
                guard done.count == 0 else { return false }
                try await connection.executeUnsafeScript(migration.sql)
                try await connection.execute(
                    "INSERT INTO depot.schema_migrations (version, name) VALUES (\(Int32(migration.version)), \(migration.name))")
                return true
            }
        } catch let error as PostgresError {
            throw MigrationError(migration: migration, underlying: error)
        }
    }
}

/// A migration that failed; nothing of it was applied.
public struct MigrationError: Error, CustomStringConvertible {
    public let migration: Migration
    public let underlying: PostgresError
    public var description: String {
        "migration \(migration.version) (\(migration.name)) failed and was rolled back: \(underlying)"
    }
}

/// The database lacks migrations this binary needs; `depot migrate` applies them.
public struct SchemaBehind: Error, CustomStringConvertible {
    public let missing: [Migration]
    public let applied: Set<Int>
    public var description: String {
        let names = missing.map { "\($0.version) (\($0.name))" }.joined(separator: ", ")
        guard !applied.isEmpty else {
            return "the database has no Depot schema: run depot migrate against it first (docker compose runs its migrate service)"
        }
        return "the database's Depot schema lacks migration\(missing.count == 1 ? "" : "s") \(names): "
            + "run depot migrate against it first (safe while nodes run; each migration applies once)"
    }
}
