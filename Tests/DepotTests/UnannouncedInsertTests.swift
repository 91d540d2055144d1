@testable import Depot
import DepotHTTP
import Foundation
import Postgres
import Testing
import TestSupport

/// An insert skips its NOTIFY while another transaction is sending one for the same store
/// (migration 0004). These tests hold two such inserts open by hand and commit them in the
/// order that used to strand the second until the member's idle poll (migration 0008).
@Suite("Inserts that skipped their NOTIFY")
struct UnannouncedInsertTests {
    static func insert(_ text: String, on connection: Connection) async throws {
        try await connection.execute("INSERT INTO depot.messages (store, payload) VALUES ('orders', convert_to(\(text), 'UTF8'))")
    }

    @Test("has_unannounced_inserts is true exactly while an insert that skipped its NOTIFY is open")
    func sqlLook() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders'), ('other')")
        let store = PostgresStore(name: "orders", pool: cluster.pool)
        let notifier = try await Connection.connect(cluster.pool.configuration)
        let skipper = try await Connection.connect(cluster.pool.configuration)
        defer { notifier.close(); skipper.close() }

        #expect(try await store.hasUnannouncedWrites() == false)
        try await notifier.execute("BEGIN")
        try await Self.insert("a", on: notifier)
        // The one sending the NOTIFY is announced: its commit wakes the members.
        #expect(try await store.hasUnannouncedWrites() == false)
        try await skipper.execute("BEGIN")
        try await Self.insert("b", on: skipper)
        #expect(try await store.hasUnannouncedWrites() == true)
        #expect(try await PostgresStore(name: "other", pool: cluster.pool).hasUnannouncedWrites() == false, "per store")
        try await notifier.execute("COMMIT")
        #expect(try await store.hasUnannouncedWrites() == true, "still open after the notifier committed")
        try await skipper.execute("COMMIT")
        #expect(try await store.hasUnannouncedWrites() == false)
        #expect(try await store.counts().ready == 2)

        // A rolled-back skipper is no longer on its way either.
        try await notifier.execute("BEGIN")
        try await Self.insert("c", on: notifier)
        try await skipper.execute("BEGIN")
        try await Self.insert("d", on: skipper)
        #expect(try await store.hasUnannouncedWrites() == true)
        try await skipper.execute("ROLLBACK")
        #expect(try await store.hasUnannouncedWrites() == false)
        try await notifier.execute("COMMIT")
    }

    @Test("an insert never waits for a look held in an open transaction: it sends its NOTIFY instead")
    func lookInATransaction() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let looker = try await Connection.connect(cluster.pool.configuration)
        let notifier = try await Connection.connect(cluster.pool.configuration)
        let inserter = try await Connection.connect(cluster.pool.configuration)
        let listener = try await Connection.connect(cluster.pool.configuration)
        defer { looker.close(); notifier.close(); inserter.close(); listener.close() }
        try await listener.listen("depot_messages")

        try await looker.execute("BEGIN")
        #expect(try await looker.query("SELECT depot.has_unannounced_inserts('orders')").first?.decode(at: 0, as: Bool.self) == false)
        try await notifier.execute("BEGIN")
        try await Self.insert("a", on: notifier)
        // It would skip (the notifier holds the NOTIFY lock), and the look holds the lock it
        // would take: it must neither wait nor go unannounced.
        try await inserter.execute("SET statement_timeout = '5s'")
        try await Self.insert("b", on: inserter)
        var heard: [String] = []
        let deadline = ContinuousClock.now + .seconds(5)
        while heard.isEmpty, ContinuousClock.now < deadline {
            heard += try await listener.notifications(timeout: .milliseconds(200)).map(\.payload)
        }
        #expect(heard == ["orders"], "the insert's own NOTIFY, while the notifier is still open")
        try await notifier.execute("COMMIT")
        try await looker.execute("COMMIT")
    }

    @Test("an insert that skipped its NOTIFY and commits after the woken member's last claim is delivered at once, not at the idle poll")
    func noStrandedInsert() async throws {
        let cluster = try await Cluster.fresh()
        let (echo, url) = try Cluster.echo()
        defer { echo.stop() }
        try await NodeBehaviourTests.forwarding(cluster, url: url) { $0.intervalMilliseconds = 0 }
        // An idle poll far beyond the test's patience: only a wake-up or a look can deliver in time.
        let node = cluster.startNode("node-a") { $0.idlePoll = .seconds(60) }
        let running = try await eventually { await node.node.runningProcessors() == ["forwarder": 1] }
        #expect(running)

        let notifier = try await Connection.connect(cluster.pool.configuration)
        let skipper = try await Connection.connect(cluster.pool.configuration)
        defer { notifier.close(); skipper.close() }
        try await notifier.execute("BEGIN")
        try await Self.insert("first", on: notifier)
        try await skipper.execute("BEGIN")
        try await Self.insert("second", on: skipper)
        try await notifier.execute("COMMIT")
        let first = try await eventually { echo.snapshot().succeeded == 1 }
        #expect(first)
        // Nothing to await here: without migration 0008 the member has, by now, claimed the
        // store empty and gone to sleep for 60 s. The pause gives it the time to do so.
        try await Task.sleep(for: .milliseconds(300))
        try await skipper.execute("COMMIT")
        let second = try await eventually(timeout: .seconds(5)) { echo.snapshot().succeeded == 2 }
        #expect(second, "the second insert waited for the idle poll")
        try await node.stop()
    }

    @Test("when a member may sleep: only after a look found nothing unannounced and the claim after it found nothing")
    func idleLook() {
        let poll = Duration.seconds(2)
        var idle = IdleLook()
        #expect(!idle.looksFirst, "the first claim goes without a look")
        #expect(idle.next(claimed: 0, unannounced: false, poll: poll) == nil, "empty without a look: look and claim again")
        #expect(idle.looksFirst)
        #expect(idle.next(claimed: 0, unannounced: false, poll: poll) == poll, "looked, nothing unannounced, empty: sleep")
        #expect(!idle.looksFirst, "after a wake-up the claim goes at once")
        #expect(idle.next(claimed: 5, unannounced: false, poll: poll) == nil)
        #expect(idle.looksFirst, "after a batch, look before the claim that may find the store empty")
        // Unannounced: look again soon, backing off to the poll.
        let retries = (0..<12).map { _ in idle.next(claimed: 0, unannounced: true, poll: poll) }
        #expect(retries.prefix(4) == [.milliseconds(2), .milliseconds(4), .milliseconds(8), .milliseconds(16)])
        #expect(retries.last == poll)
        #expect(idle.looksFirst)
        #expect(idle.next(claimed: 1, unannounced: false, poll: poll) == nil)
        #expect(idle.next(claimed: 0, unannounced: true, poll: poll) == .milliseconds(2), "a batch starts the back-off afresh")

        var announcing = IdleLook(looks: false)
        #expect(announcing.next(claimed: 3, unannounced: false, poll: poll) == nil)
        #expect(!announcing.looksFirst, "a store that announces every write is never asked")
        #expect(announcing.next(claimed: 0, unannounced: false, poll: poll) == poll, "and its first empty claim is the last")
    }
}
