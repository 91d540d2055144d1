import Depot
import Foundation
import Postgres
import Testing
import TestSupport

/// Group commit: single-message stores made at the same moment share transactions, and each
/// caller still gets its own receipt for a message that is committed when the call returns.
@Suite("Producer group commit")
struct ProducerCoalescingTests {
    @Test("500 concurrent single stores: 500 distinct committed messages, in far fewer transactions")
    func concurrentStoresShareCommits() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders');")
        let producer = Producer(pool: cluster.pool, stores: StoreDirectory(pool: cluster.pool))
        let receipts = try await withThrowingTaskGroup(of: StoreReceipt.self) { group in
            for index in 0..<500 {
                group.addTask {
                    let receipt = try await producer.store(OutgoingMessage(text: "m\(index)"), in: "orders")
                    #expect(receipt.heldIn == nil)
                    return receipt.receipts[0]
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(receipts.map(\.id)).count == 500)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'orders'") == 500)
        // created_at is now(): the start of the message's transaction. One per message means
        // one transaction each; shared values mean shared commits.
        let transactions = try await cluster.integer(
            "SELECT count(DISTINCT created_at) FROM depot.messages WHERE store = 'orders'")
        #expect(transactions < 250, "\(transactions) transactions for 500 concurrent stores")
        await cluster.pool.close()
    }

    @Test("an unknown store fails every caller waiting on it with the store's name, and the producer goes on")
    func failureReachesEveryCaller() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders');")
        let producer = Producer(pool: cluster.pool, stores: StoreDirectory(pool: cluster.pool))
        let failures = await withTaskGroup(of: String?.self) { group in
            for index in 0..<50 {
                group.addTask {
                    do {
                        _ = try await producer.store(OutgoingMessage(text: "m\(index)"), in: "missing")
                        return nil
                    } catch {
                        return "\(error)"
                    }
                }
            }
            return await group.reduce(into: [String?]()) { $0.append($1) }
        }
        #expect(failures.count == 50)
        #expect(failures.allSatisfy { $0?.contains("missing") == true }, "\(failures.prefix(3))")
        let after = try await producer.store(OutgoingMessage(text: "after"), in: "orders")
        #expect(after.receipts.count == 1)
        await cluster.pool.close()
    }
}
