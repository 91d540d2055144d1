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
