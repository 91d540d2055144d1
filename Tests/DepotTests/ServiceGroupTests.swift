@testable import Depot
import Foundation
import Synchronization
import Testing
import TestSupport

/// The node's service lifecycle without a database: services stop in reverse order, one that
/// fails stops the rest, a stuck one is cancelled and given up on after the deadline.
@Suite("Service group")
struct ServiceGroupTests {
    /// Records what happened to each service, in order.
    final class Journal: Sendable {
        private let entries = Mutex<[String]>([])
        func add(_ entry: String) { entries.withLock { $0.append(entry) } }
        var all: [String] { entries.withLock { $0 } }
    }

    /// Runs until told to stop, and records its start and stop.
    struct Recorded: Service {
        let name: String
        let journal: Journal
        var failsAtOnce = false
        var ignoresShutdown = false

        func run(_ shutdown: ShutdownSignal) async throws {
            journal.add("start \(name)")
            if failsAtOnce { throw StoreError(.invalidArgument, "\(name) broke") }
            if ignoresShutdown {
                // Stuck in a call that only cancellation ends (a back end that never answers).
                try? await Task.sleep(for: .seconds(600))
                journal.add("cancelled \(name)")
                return
            }
            await shutdown.wait()
            journal.add("stop \(name)")
        }
    }

    @Test("shutDown stops the services in reverse order, each after the one started after it")
    func reverseOrder() async throws {
        let journal = Journal()
        let group = ServiceGroup(["a", "b", "c"].map { Recorded(name: $0, journal: journal) }, node: "test")
        let running = Task { try await group.run() }
        #expect(try await eventually { journal.all.filter { $0.hasPrefix("start") }.count == 3 })
        group.shutDown()
        try await running.value
        #expect(journal.all.suffix(3) == ["stop c", "stop b", "stop a"])
    }

    @Test("a service that fails stops the others in reverse order, and run rethrows its error")
    func failureStopsTheGroup() async throws {
        let journal = Journal()
        let group = ServiceGroup([Recorded(name: "a", journal: journal), Recorded(name: "b", journal: journal),
                                  Recorded(name: "c", journal: journal, failsAtOnce: true)], node: "test")
        await #expect(throws: StoreError.self) { try await group.run() }
        #expect(journal.all.suffix(2) == ["stop b", "stop a"])
    }

    @Test("a service still running at the deadline is cancelled, and the group gives up on one that ignores even that")
    func deadlineCancels() async throws {
        let journal = Journal()
        let group = ServiceGroup([Recorded(name: "a", journal: journal), Recorded(name: "stuck", journal: journal, ignoresShutdown: true)],
                                 node: "test", gracefulTimeout: .milliseconds(200))
        let running = Task { try await group.run() }
        #expect(try await eventually { journal.all.count == 2 })
        let asked = ContinuousClock.now
        group.shutDown()
        try await running.value
        #expect(ContinuousClock.now - asked >= .milliseconds(200), "the group did not wait for the deadline")
        // Past the deadline everything left is stopped at once: the stuck one cancelled, the other told.
        #expect(Set(journal.all.suffix(2)) == ["cancelled stuck", "stop a"], "\(journal.all)")

        let started = Journal()
        let ignoring = ServiceGroup([NeverStops(journal: started)], node: "test", gracefulTimeout: .milliseconds(50),
                                    cancellationGrace: .milliseconds(50))
        let stuck = Task { try await ignoring.run() }
        #expect(try await eventually { started.all == ["start never"] })
        ignoring.shutDown()
        await #expect(throws: ServiceGroupError.self) { try await stuck.value }
    }

    @Test("shutDown before run starts nothing")
    func shutDownFirst() async throws {
        let journal = Journal()
        let group = ServiceGroup([Recorded(name: "a", journal: journal)], node: "test")
        group.shutDown()
        try await group.run()
        #expect(journal.all.isEmpty)
    }

    @Test("the periodic loop backs off after a failure, says so once, and a nudge runs a pass at once")
    func periodicLoop() async throws {
        let passes = Mutex<[ContinuousClock.Instant]>([])
        let failing = Mutex(3)
        let nudge = WakeSignal()
        let shutdown = ShutdownSignal()
        let loop = PeriodicLoop(work: "test work", node: "test", interval: .seconds(60), nudge: nudge)
        let running = Task {
            await loop.run(until: shutdown) {
                passes.withLock { $0.append(.now) }
                let fails = failing.withLock { left -> Bool in
                    defer { left -= 1 }
                    return left > 0
                }
                if fails { throw StoreError(.invalidArgument, "not yet") }
            }
        }
        // Three failures retried after 100, 200 and 400 ms, then a success; the next pass waits the interval.
        #expect(try await eventually(timeout: .seconds(5)) { passes.withLock { $0.count } == 4 })
        let times = passes.withLock { $0 }
        #expect(times[3] - times[0] >= .milliseconds(700), "retried faster than the back-off")
        nudge.wake()
        #expect(try await eventually(timeout: .seconds(5)) { passes.withLock { $0.count } == 5 }, "a nudge did not run a pass before the interval")
        shutdown.trigger()
        await running.value
    }
}

/// Ignores its shutdown and cancellation both.
private struct NeverStops: Service {
    let name = "never"
    let journal: ServiceGroupTests.Journal
    func run(_ shutdown: ShutdownSignal) async {
        journal.add("start never")
        await withCheckedContinuation { (_: CheckedContinuation<Void, Never>) in }
    }
}
