import Depot
import Foundation
import Postgres
import Testing
import TestSupport

/// Guaranteed delivery for a Swift app that stores directly: with PostgreSQL stopped, messages
/// go to the store's failover store; a node drains them into the primary once it is back.
@Suite("Guaranteed delivery")
struct GuaranteedDeliveryTests {
    @Test("PostgreSQL stopped: 100 messages are held in the memory failover store, then drained into the primary, ids kept")
    func memoryFailover() async throws {
        let server = try await ThrowawayPostgres.start()
        defer { Task { await server.destroy() } }
        let pool = ConnectionPool(ConnectionConfiguration(server.url), maximumConnections: 5)
        _ = try await pool.withConnection { try await Migrator().migrate(on: $0) }
        try await pool.withConnection { try await $0.executeUnsafeScript("""
            INSERT INTO depot.stores (name, kind) VALUES ('orders-failover', 'memory');
            INSERT INTO depot.stores (name, failover_store, guaranteed_delivery) VALUES ('orders', 'orders-failover', true);
            INSERT INTO depot.stores (name) VALUES ('plain');
            """) }
        let stores = StoreDirectory(pool: pool)
        let producer = Producer(pool: pool, stores: stores)
        let before = try await producer.store(OutgoingMessage(text: "before"), in: "orders")
        #expect(before.heldIn == nil)

        try await server.stop()
        var held: [UUID] = []
        for index in 0..<100 {
            let receipt = try await producer.store(OutgoingMessage(text: "held \(index)"), in: "orders")
            #expect(receipt.heldIn == "orders-failover")
            held.append(receipt.receipts[0].id)
        }
        // Without guaranteed delivery the producer hears that the database is down.
        await #expect(throws: PostgresError.self) { try await producer.store(OutgoingMessage(text: "lost?"), in: "plain") }
        #expect(try await stores.store(named: "orders-failover", kind: .memory).counts().ready == 100)

        var configuration = Cluster.nodeConfiguration("node-a")
        configuration.waitForDatabase = true
        let node = Node(configuration, pool: pool, stores: stores)
        let running = Task { try await node.run() }
        try await server.restart()
        let drained = try await eventually(timeout: .seconds(30)) {
            (try? await pool.query("SELECT count(*) FROM depot.messages WHERE store = 'orders'").first?.decode(at: 0, as: Int.self)) == 101
        }
        await node.stop()
        try await running.value
        #expect(drained)
        let ids = try await pool.query("SELECT id FROM depot.messages WHERE store = 'orders' ORDER BY seq").map { try $0.decode(at: 0, as: UUID.self) }
        #expect(ids == [before.receipts[0].id] + held, "drained in order, ids kept")
        #expect(try await stores.store(named: "orders-failover", kind: .memory).counts().total == 0)
        await pool.close()
    }
}
