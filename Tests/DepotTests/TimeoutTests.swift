@testable import Depot
import Foundation
import Synchronization
import Testing
import TestSupport

/// The node's one-shot timers (`Timeout`): each fires once, not before its delay, in the order
/// of their deadlines whatever order they were set in; a cancelled one never fires.
@Suite("Timeout")
struct TimeoutTests {
    /// When each timer fired, by name.
    final class Firings: Sendable {
        private let fired = Mutex<[(name: String, at: ContinuousClock.Instant)]>([])
        func add(_ name: String) { fired.withLock { $0.append((name, .now)) } }
        var names: [String] { fired.withLock { $0.map(\.name) } }
        func time(of name: String) -> ContinuousClock.Instant? { fired.withLock { $0.first { $0.name == name }?.at } }
    }

    @Test("a timer fires once, and not before its delay")
    func firesOnceAfterDelay() async throws {
        let firings = Firings()
        let set = ContinuousClock.now
        Timeout.after(.milliseconds(150)) { firings.add("a") }
        #expect(try await eventually(timeout: .seconds(5), every: .milliseconds(10)) { firings.names == ["a"] })
        let fired = try #require(firings.time(of: "a"))
        #expect(fired - set >= .milliseconds(150))
        // Still once, well after.
        try await Task.sleep(for: .milliseconds(200))
        #expect(firings.names == ["a"])
    }

    @Test("a cancelled timer never fires; the others around it do")
    func cancelledNeverFires() async throws {
        let firings = Firings()
        Timeout.after(.milliseconds(100)) { firings.add("before") }
        let cancelled = Timeout.after(.milliseconds(150)) { firings.add("cancelled") }
        Timeout.after(.milliseconds(300)) { firings.add("after") }
        cancelled.cancel()
        #expect(try await eventually(timeout: .seconds(5), every: .milliseconds(10)) { firings.names.count == 2 })
        #expect(firings.names == ["before", "after"])
    }

    @Test("a timer set after a later one fires first, at its own time (the sleeping thread is woken for it)")
    func earlierTimerSetLaterFiresFirst() async throws {
        let firings = Firings()
        let set = ContinuousClock.now
        let late = Timeout.after(.seconds(30)) { firings.add("late") }
        defer { late.cancel() }
        // Let the thread go to sleep until the late one first.
        try await Task.sleep(for: .milliseconds(50))
        Timeout.after(.milliseconds(100)) { firings.add("early") }
        #expect(try await eventually(timeout: .seconds(5), every: .milliseconds(10)) { firings.names == ["early"] })
        // Unwoken, the thread would look again only after its longest sleep (a second).
        let fired = try #require(firings.time(of: "early"))
        #expect(fired - set < .milliseconds(900))
    }

    @Test("a producer's deadline: an operation that outlasts it gives DeadlineExceeded, one that does not gives its value")
    func deadline() async throws {
        let quick = try await withDeadline(.seconds(5)) { 42 }
        #expect(quick == 42)
        await #expect(throws: DeadlineExceeded.self) {
            try await withDeadline(.milliseconds(100)) {
                try await Task.sleep(for: .seconds(2))
                return 0
            }
        }
    }
}
