@testable import Depot
import Foundation
import Testing
import TestSupport

/// Group commit's pipeline: a second batch goes out while the first waits for its commit, and
/// callers arriving while both are out wait and go together in the next.
@Suite("Batches in flight")
struct StoreCoalescerTests {
    /// A write that holds each batch until the test lets it go, and counts what was in flight.
    actor HeldWrites {
        private(set) var batches: [[OutgoingMessage]] = []
        private(set) var mostInFlight = 0
        private var inFlight = 0
        private var gates: [CheckedContinuation<Void, Never>] = []

        func write(_ batch: [OutgoingMessage]) async -> ProducerReceipt {
            batches.append(batch)
            inFlight += 1
            mostInFlight = max(mostInFlight, inFlight)
            await withCheckedContinuation { gates.append($0) }
            inFlight -= 1
            return ProducerReceipt(receipts: batch.map { StoreReceipt(id: $0.id ?? UUID(), created: true) }, heldIn: nil)
        }

        /// Lets every held batch commit.
        func releaseAll() {
            gates.forEach { $0.resume() }
            gates.removeAll()
        }
    }

    @Test("a second batch goes out while the first is in flight; later callers wait and share the third")
    func twoBatchesInFlight() async throws {
        let writes = HeldWrites()
        let coalescer = StoreCoalescer { batch in await writes.write(batch) }
        let calls = (0..<4).map { index in OutgoingMessage(payload: Data("m\(index)".utf8), id: UUID()) }
        var tasks: [Task<ProducerReceipt, Error>] = []

        tasks.append(Task { try await coalescer.store(calls[0]) })
        #expect(try await eventually { await writes.batches.count == 1 })
        tasks.append(Task { try await coalescer.store(calls[1]) })
        #expect(try await eventually { await writes.batches.count == 2 }, "the second caller should not wait for the first commit")

        tasks.append(Task { try await coalescer.store(calls[2]) })
        tasks.append(Task { try await coalescer.store(calls[3]) })
        #expect(try await eventually { coalescer.waitingCount == 2 })
        #expect(await writes.batches.count == 2, "a third batch went out while two were in flight")

        #expect(try await eventually {
            await writes.releaseAll()
            return await writes.batches.count == 3 && coalescer.waitingCount == 0
        })
        await writes.releaseAll()
        var receipts: [UUID] = []
        for task in tasks { receipts += try await task.value.receipts.map(\.id) }
        #expect(receipts == calls.map { $0.id! }, "each caller hears of its own message")
        #expect(await writes.batches.map(\.count) == [1, 1, 2])
        #expect(await writes.mostInFlight == 2)
    }
}
