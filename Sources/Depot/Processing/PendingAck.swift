import Foundation

/// An ack running beside a member's next claim. `finish()` waits for it and hands back the ids
/// it could not ack, so that the member acks them with its next batch rather than letting
/// them come again when their leases run out.
struct PendingAck {
    private let ids: [UUID]
    private var task: Task<Void, Error>?

    /// Nothing pending.
    init() {
        ids = []
        task = nil
    }

    /// Starts acking `ids` now.
    init(_ ids: [UUID], _ ack: @escaping @Sendable () async throws -> Void) {
        self.ids = ids
        task = Task { try await ack() }
    }

    /// Waits for the ack; returns the ids still unacked (all of them when it failed, else none).
    @discardableResult
    mutating func finish() async -> [UUID] {
        guard let task else { return [] }
        self.task = nil
        do {
            try await task.value
            return []
        } catch {
            return ids
        }
    }
}
