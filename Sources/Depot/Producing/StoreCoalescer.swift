import Foundation

/// Folds single-message stores that arrive together into one round trip (group commit): while
/// `maximumInFlight` batches are being written, the next callers wait and go out together in
/// the next one. Each caller still hears only after its message is committed (or held in failover),
/// so a 202 means the same as before; one commit's fsync now serves many producers.
final class StoreCoalescer: @unchecked Sendable {
    /// Writes a batch into one store; the producer's own path, with its failover.
    typealias Write = @Sendable ([OutgoingMessage]) async throws -> ProducerReceipt

    private struct Waiting {
        let message: OutgoingMessage
        let continuation: CheckedContinuation<ProducerReceipt, Error>
    }

    private let write: Write
    /// Most messages one round trip takes. Default 1000.
    private let maximumBatch: Int
    /// Batches in flight at once. Default 2: while one commits, the callers arriving meanwhile
    /// go out together in the next, whose statement runs while the first waits for its fsync.
    /// With one, a few producers that each store again as soon as they hear back all sat in the
    /// batch in flight; when it came back, the first caller to return went out alone and the
    /// rest waited a whole commit behind it (the figures are in commit e3d66ac).
    private let maximumInFlight: Int
    private let lock = NSLock()
    private var waiting: [Waiting] = []
    private var inFlight = 0

    init(maximumBatch: Int = 1000, maximumInFlight: Int = 2, write: @escaping Write) {
        self.maximumBatch = maximumBatch
        self.maximumInFlight = maximumInFlight
        self.write = write
    }

    /// Stores `message` with whatever else is waiting; returns its own receipt.
    ///
    /// A caller that finds nobody waiting and a batch free writes its message itself, in its
    /// own task: a producer storing one message at a time then pays for no task to start and no
    /// continuation to resume, only for the write. Callers arriving meanwhile wait as before,
    /// and the lone writer hands its batch slot to a flusher for them when it is done.
    func store(_ message: OutgoingMessage) async throws -> ProducerReceipt {
        let alone: Bool = lock.withLock {
            guard waiting.isEmpty, inFlight < maximumInFlight else { return false }
            inFlight += 1
            return true
        }
        if alone {
            defer { handOver() }
            return try await write([message])
        }
        return try await withCheckedThrowingContinuation { continuation in
            let startFlusher: Bool = lock.withLock {
                waiting.append(Waiting(message: message, continuation: continuation))
                guard inFlight < maximumInFlight else { return false }
                inFlight += 1
                return true
            }
            if startFlusher { Task { await self.flush() } }
        }
    }

    /// After a lone write: its batch slot goes to a flusher when callers came meanwhile.
    private func handOver() {
        let flushWaiting: Bool = lock.withLock {
            if waiting.isEmpty {
                inFlight -= 1
                return false
            }
            return true
        }
        if flushWaiting { Task { await self.flush() } }
    }

    /// Messages waiting for a batch to take them (for tests).
    var waitingCount: Int { lock.withLock { waiting.count } }

    /// Writes what waits, batch after batch, until nothing does.
    private func flush() async {
        while true {
            let batch: [Waiting] = lock.withLock {
                let taken = Array(waiting.prefix(maximumBatch))
                waiting.removeFirst(taken.count)
                if taken.isEmpty { inFlight -= 1 }
                return taken
            }
            if batch.isEmpty { return }
            await settle(batch)
        }
    }

    private func settle(_ batch: [Waiting]) async {
        do {
            let result = try await write(batch.map(\.message))
            for (waiting, receipt) in zip(batch, result.receipts) {
                waiting.continuation.resume(returning: ProducerReceipt(receipts: [receipt], heldIn: result.heldIn))
            }
        } catch where batch.count > 1 && !Producer.isUnavailability(error) {
            // One bad message must not fail the others: store them one by one to find it.
            for waiting in batch {
                do {
                    waiting.continuation.resume(returning: try await write([waiting.message]))
                } catch {
                    waiting.continuation.resume(throwing: error)
                }
            }
        } catch {
            for waiting in batch { waiting.continuation.resume(throwing: error) }
        }
    }
}
