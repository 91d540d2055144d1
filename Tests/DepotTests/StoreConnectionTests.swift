import Depot
import Foundation
import Postgres
import Testing
import TestSupport

/// MI's store connection settings: a processor that cannot reach the database for
/// max_store_connection_attempts attempts stops and is deactivated with the reason once the
/// database answers; -1 keeps trying and resumes.
@Suite("Store connection attempts")
struct StoreConnectionTests {
    @Test("PostgreSQL stopped: the processor with 3 attempts gives up and is deactivated with the reason once it is back; the one with -1 resumes")
    func givesUpAfterAttempts() async throws {
        let server = try await ThrowawayPostgres.start()
        defer { Task { await server.destroy() } }
        let pool = ConnectionPool(ConnectionConfiguration(server.url), maximumConnections: 6)
        try await pool.withConnection { connection in
            try await Migrator().migrate(on: connection)
            try await connection.executeUnsafeScript("""
                INSERT INTO depot.stores (name) VALUES ('fragile-in'), ('patient-in');
                INSERT INTO depot.processors (name, kind, store, handler, interval_ms, max_store_connection_attempts, store_connection_retry_interval_ms)
                VALUES ('fragile', 'sampling', 'fragile-in', 'count', 0, 3, 100),
                       ('patient', 'sampling', 'patient-in', 'count', 0, -1, 100);
                """)
        }
        let handled = Counter()
        var handlers = HandlerRegistry()
        handlers.register("count") { _ in handled.add() }
        var configuration = Cluster.nodeConfiguration("node-a")
        configuration.idlePoll = .milliseconds(100)
        let node = Node(configuration, pool: pool, handlers: handlers)
        let running = Task { try await node.run() }
        #expect(try await eventually { await node.runningProcessors().keys.sorted() == ["fragile", "patient"] })

        try await server.stop()
        #expect(try await eventually(timeout: .seconds(20)) { await node.processorsThatGaveUp() == ["fragile"] })
        try await server.restart()
        let deactivated = try await eventually(timeout: .seconds(20)) {
            (try? await pool.query("SELECT deactivated_reason FROM depot.processors WHERE name = 'fragile' AND NOT is_active")
                .first?.decode(at: 0, as: String.self))?.contains("max_store_connection_attempts 3") == true
        }
        #expect(deactivated)
        _ = try await PostgresStore(name: "patient-in", pool: pool).store(OutgoingMessage(text: "after the outage"))
        #expect(try await eventually(timeout: .seconds(20)) { handled.value == 1 }, "the patient processor resumed")
        #expect(try await eventually { await node.runningProcessors().keys.sorted() == ["patient"] }, "the deactivated row stops it for good")
        await node.stop()
        try await running.value
        let refused = await #expect(throws: PostgresError.self) {
            try await pool.query("UPDATE depot.processors SET max_store_connection_attempts = 0 WHERE name = 'patient'")
        }
        #expect(refused?.message.contains("processors_max_store_connection_attempts") == true)
        await pool.close()
    }
}

/// Counts from any task.
private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
