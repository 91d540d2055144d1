import Postgres

/// The database every command talks to: `DEPOT_DATABASE_URL`, else libpq's `PG*` variables.
func withDatabase<T: Sendable>(_ body: (ConnectionPool) async throws -> T) async throws -> T {
    let pool = ConnectionPool(.fromEnvironment(), maximumConnections: 2)
    do {
        let value = try await body(pool)
        await pool.close()
        return value
    } catch {
        await pool.close()
        throw error
    }
}

/// Refuses a database that holds stores of its own: `depot bench` and `depot chaos` delete what
/// they find, so they run only against a throwaway database (or one holding their own stores).
func refuseDatabaseInUse(_ pool: ConnectionPool, verb: String, deleting what: String, script: String) async throws {
    let prefix = verb + "-"
    let foreign = try await pool.query("""
        SELECT name FROM depot.stores WHERE left(name, \(Int32(prefix.count))) <> \(prefix) ORDER BY name LIMIT 5
        """).map { try $0.decode(at: 0, as: String.self) }
    guard foreign.isEmpty else {
        throw CLIFailure.data("depot \(verb) deletes \(what), and this database has stores of its own (\(foreign.joined(separator: ", "))); point DEPOT_DATABASE_URL at a throwaway database, or run \(script), which starts one")
    }
}
