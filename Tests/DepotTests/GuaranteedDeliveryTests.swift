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

    @Test("over HTTP, an INSERT held up past the producer's deadline (its table locked) still gets a 202 in time, the message held in the failover store")
    func deadlineOverHTTP() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("""
            INSERT INTO depot.stores (name, kind) VALUES ('orders-failover', 'memory');
            INSERT INTO depot.stores (name, failover_store, guaranteed_delivery) VALUES ('orders', 'orders-failover', true);
            """)
        let stores = StoreDirectory(pool: cluster.pool)
        let ingress = try cluster.startIngress(stores: stores, producer: .init(primaryTimeout: .milliseconds(500)))
        defer { ingress.server.stop() }
        struct Answer: Decodable { let id: String; let held_in: String? }
        let before = try await ingress.send("POST", "/stores/orders/messages", headers: ["Content-Type": "text/plain"], body: Data("before".utf8))
        #expect(before.status == 202)
        #expect(try JSONDecoder().decode(Answer.self, from: before.body).held_in == nil)

        // The ingress answers from its connection's thread, which waits for PostgreSQL itself:
        // the deadline must end that wait too. The lock goes after 10 s whatever happens, so a
        // wait that ignored the deadline fails this test instead of hanging it.
        let locker = try await Connection.connect(cluster.pool.configuration)
        defer { locker.close() }
        try await locker.execute("BEGIN")
        try await locker.execute("LOCK TABLE depot.messages IN ACCESS EXCLUSIVE MODE")
        let release = Task {
            try? await Task.sleep(for: .seconds(10))
            _ = try? await locker.execute("ROLLBACK")
        }
        let started = ContinuousClock.now
        let held = try await ingress.send("POST", "/stores/orders/messages", headers: ["Content-Type": "text/plain"], body: Data("held".utf8))
        let waited = ContinuousClock.now - started
        release.cancel()
        _ = try await locker.execute("ROLLBACK")
        #expect(held.status == 202, "\(String(decoding: held.body, as: UTF8.self))")
        #expect(try JSONDecoder().decode(Answer.self, from: held.body).held_in == "orders-failover")
        #expect(waited >= .milliseconds(500) && waited < .seconds(5), "answered after \(waited)")
        #expect(try await stores.store(named: "orders-failover", kind: .memory).counts().ready == 1)
    }
}
