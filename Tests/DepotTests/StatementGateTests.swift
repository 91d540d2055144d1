@testable import Depot
import Foundation
import Testing

/// A processor's claim statements take turns: never more at once than the gate allows, and
/// every one of them runs.
@Suite("Claim statements taking turns")
struct StatementGateTests {
    /// Who is inside the gate now, the most ever at once, and how many ran.
    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var inside = 0
        private(set) var most = 0
        private(set) var ran = 0
        func enter() { lock.withLock { inside += 1; most = max(most, inside) } }
        func leave() { lock.withLock { inside -= 1; ran += 1 } }
        var counts: (most: Int, ran: Int) { lock.withLock { (most, ran) } }
    }

    @Test("20 callers through a gate of 3: at most 3 inside at once, all 20 run, errors pass through")
    func atMostLimitAtOnce() async throws {
        let gate = StatementGate(limit: 3)
        let tally = Tally()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await gate.run {
                        tally.enter()
                        try await Task.sleep(for: .milliseconds(10))  // the statement's work
                        tally.leave()
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(tally.counts.ran == 20)
        #expect(tally.counts.most == 3)
        struct Refused: Error {}
        await #expect(throws: Refused.self) { try await gate.run { throw Refused() } }
        // A body that threw gave its turn back.
        let after = try await gate.run { 7 }
        #expect(after == 7)
    }
}
