import Foundation
import Postgres
import Testing
import TestSupport

@Suite("Recovering from a server restart")
struct ReconnectTests {
    @Test("a pool serves again after PostgreSQL restarts, without a restart of its own")
    func poolRecoversAfterRestart() async throws {
        let server = try await ThrowawayPostgres.start()
        defer { Task { await server.destroy() } }
        let pool = ConnectionPool(ConnectionConfiguration(server.url), maximumConnections: 2)
        #expect(try await pool.query("SELECT 1").first?.decode(at: 0, as: Int.self) == 1)

        try await server.stop()
        let whileDown = await #expect(throws: PostgresError.self) { try await pool.query("SELECT 1") }
        #expect(whileDown?.isConnectionLoss == true)

        try await server.restart()
        let recovered = try await eventually(timeout: .seconds(15)) {
            (try? await pool.query("SELECT 2").first?.decode(at: 0, as: Int.self)) == 2
        }
        #expect(recovered)
        await pool.close()
    }

    @Test("an idle connection reconnects by itself when the server restarted meanwhile")
    func idleConnectionReconnects() async throws {
        let server = try await ThrowawayPostgres.start()
        defer { Task { await server.destroy() } }
        let connection = try await Connection.connect(ConnectionConfiguration(server.url))
        defer { connection.close() }
        let before = try await connection.query("SELECT pg_backend_pid()").first!.decode(at: 0, as: Int32.self)
        try await server.stop()
        try await server.restart()
        let after = try await connection.query("SELECT pg_backend_pid()").first!.decode(at: 0, as: Int32.self)
        #expect(after != before)
    }
}
