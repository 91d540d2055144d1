import Foundation

/// At most `limit` bodies at once; the rest wait their turn in arrival order. A processor's
/// members pass their claim statements through one, so that eight members on a node do not
/// run eight claims at once against a database with two cores: the members still deliver side
/// by side, only their statements take turns.
final class StatementGate: @unchecked Sendable {
    private let lock = NSLock()
    private let limit: Int
    private var running = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) { self.limit = max(limit, 1) }

    /// Runs `body` once fewer than `limit` others are running.
    func run<T>(_ body: () async throws -> T) async throws -> T {
        await enter()
        defer { leave() }
        return try await body()
    }

    private func enter() async {
        await withCheckedContinuation { continuation in
            let admitted: Bool = lock.withLock {
                if running < limit {
                    running += 1
                    return true
                }
                waiting.append(continuation)
                return false
            }
            if admitted { continuation.resume() }
        }
    }

    private func leave() {
        let next: CheckedContinuation<Void, Never>? = lock.withLock {
            if waiting.isEmpty {
                running -= 1
                return nil
            }
            return waiting.removeFirst()  // the slot passes straight to the next
        }
        next?.resume()
    }
}
