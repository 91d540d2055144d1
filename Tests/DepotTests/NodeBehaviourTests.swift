import Depot
import DepotHTTP
import Foundation
import Postgres
import Testing
import TestSupport

/// What a node runs and how: pinning, members, pacing, hot reload, bad rows, sampling,
/// failover-forwarding and cron. Nodes run in this process; back ends are real HTTP servers.
@Suite("Worker nodes")
struct NodeBehaviourTests {
    /// A store `orders`, an endpoint `backend` at `url`, and one forwarding processor `forwarder`
    /// to it, with the columns `configure` sets.
    static func forwarding(_ cluster: Cluster, url: String, _ configure: (inout ProcessorDefinition) -> Void = { _ in }) async throws {
        try await cluster.addStore("orders")
        try await cluster.addEndpoint("backend", url: url)
        try await cluster.addProcessor("forwarder", .forwarding, from: "orders") {
            $0.targetEndpoint = "backend"
            configure(&$0)
        }
    }

    @Test("pinned_servers = '{node-b}': node-a never delivers for it; node-b does")
    func pinnedServers() async throws {
        let cluster = try await Cluster.fresh()
        let (echo, url) = try Cluster.echo()
        defer { echo.stop() }
        try await Self.forwarding(cluster, url: url) { $0.intervalMilliseconds = 0; $0.pinnedServers = ["node-b"] }
        let nodeA = cluster.startNode("node-a")
        _ = try await cluster.storeTexts("orders", count: 20)
        let registered = try await eventually { try await cluster.integer("SELECT count(*) FROM depot.nodes WHERE name = 'node-a'") == 1 }
        #expect(registered)
        try await Task.sleep(for: .seconds(1))  // give node-a every chance to (wrongly) deliver
        #expect(await nodeA.node.runningProcessors().isEmpty)
        #expect(echo.snapshot().requests == 0)
        let nodeB = cluster.startNode("node-b")
        let delivered = try await eventually { echo.snapshot().succeeded == 20 }
        #expect(delivered)
        #expect(await nodeB.node.runningProcessors() == ["forwarder": 1])
        try await nodeA.stop()
        try await nodeB.stop()
    }

    @Test("member_count 4 against a slow back end: 4 deliveries in flight at once")
    func membersRunConcurrently() async throws {
        let cluster = try await Cluster.fresh()
        let (echo, url) = try Cluster.echo(.init(delayMilliseconds: 300))
        defer { echo.stop() }
        try await Self.forwarding(cluster, url: url) { $0.intervalMilliseconds = 0; $0.memberCount = 4 }
        let node = cluster.startNode("node-a")
        _ = try await cluster.storeTexts("orders", count: 12)
        let delivered = try await eventually(timeout: .seconds(20)) { echo.snapshot().succeeded == 12 }
        try await node.stop()
        #expect(delivered)
        #expect(echo.snapshot().maximumConcurrent == 4)
    }

    @Test("interval_ms 200, batch_size 1, one member: deliveries are paced, not a burst")
    func intervalPacing() async throws {
        let cluster = try await Cluster.fresh()
        let (echo, url) = try Cluster.echo()
        defer { echo.stop() }
        try await Self.forwarding(cluster, url: url) { $0.intervalMilliseconds = 200; $0.batchSize = 1 }
        _ = try await cluster.storeTexts("orders", count: 11)
        let node = cluster.startNode("node-a")
        let delivered = try await eventually(timeout: .seconds(15)) { echo.snapshot().succeeded == 11 }
        try await node.stop()
        #expect(delivered)
        let times = echo.arrivalTimes()
        // Claims are 200 ms apart; arrivals jitter with load, so judge spans, not single gaps:
        // 10 intervals take about 2 s, and any 4 take well over a burst's few milliseconds.
        #expect(times.last! - times.first! >= .milliseconds(1700), "11 deliveries took \(times.last! - times.first!)")
        let spans = zip(times.dropFirst(4), times).map { $0 - $1 }
        #expect(spans.allSatisfy { $0 >= .milliseconds(500) }, "spans of 4 intervals: \(spans)")
    }

    @Test("hot reload: deactivated by SQL, deliveries stop within 2 s; reactivated, they resume")
    func hotReload() async throws {
        let cluster = try await Cluster.fresh()
        let (echo, url) = try Cluster.echo()
        defer { echo.stop() }
        try await Self.forwarding(cluster, url: url) { $0.intervalMilliseconds = 0 }
        let node = cluster.startNode("node-a")
        _ = try await cluster.storeTexts("orders", count: 5)
        #expect(try await eventually { echo.snapshot().succeeded == 5 })

        try await cluster.sql("UPDATE depot.processors SET is_active = false WHERE name = 'forwarder'")
        let stopped = try await eventually(timeout: .seconds(2)) { await node.node.runningProcessors().isEmpty }
        #expect(stopped)
        _ = try await cluster.storeTexts("orders", count: 5, prefix: "later")
        try await Task.sleep(for: .milliseconds(700))  // nothing may arrive while it is off
        #expect(echo.snapshot().requests == 5)

        try await cluster.sql("UPDATE depot.processors SET is_active = true WHERE name = 'forwarder'")
        let resumed = try await eventually(timeout: .seconds(4)) { echo.snapshot().succeeded == 10 }
        #expect(resumed)

        // An endpoint change restarts the processor against the new URL.
        let (second, secondURL) = try Cluster.echo()
        defer { second.stop() }
        try await cluster.sql("UPDATE depot.endpoints SET url = '\(secondURL)' WHERE name = 'backend'")
        try await Task.sleep(for: .milliseconds(300))
        var moved = false
        for round in 0..<20 where !moved {
            _ = try await cluster.storeTexts("orders", count: 1, prefix: "round\(round)-")
            moved = try await eventually(timeout: .milliseconds(500)) { second.snapshot().succeeded >= 1 }
        }
        #expect(moved, "the endpoint's new URL was never used")
        // A deleted processor stops too.
        try await cluster.sql("DELETE FROM depot.processors WHERE name = 'forwarder'")
        #expect(try await eventually(timeout: .seconds(2)) { await node.node.runningProcessors().isEmpty })
        try await node.stop()
    }

    @Test("the database refuses nonsense rows with a message naming the column")
    func refusedRows() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('orders');
            INSERT INTO depot.endpoints (name, url) VALUES ('backend', 'http://127.0.0.1:9/in');
            """)
        let cases: [(String, String)] = [
            ("INSERT INTO depot.processors (name, kind, store) VALUES ('p', 'forwarder', 'orders')", "processors.kind"),
            ("INSERT INTO depot.processors (name, kind, store, target_endpoint, member_count) VALUES ('p', 'forwarding', 'orders', 'backend', 0)", "processors.member_count"),
            ("INSERT INTO depot.processors (name, kind, store) VALUES ('p', 'forwarding', 'orders')", "processors.target_endpoint"),
            ("INSERT INTO depot.processors (name, kind, store) VALUES ('p', 'failover-forwarding', 'orders')", "processors.target_store"),
            ("INSERT INTO depot.processors (name, kind, store, target_endpoint) VALUES ('p', 'forwarding', 'nope', 'backend')", "processors.store"),
            ("INSERT INTO depot.processors (name, kind, store, target_endpoint, cron) VALUES ('p', 'forwarding', 'orders', 'backend', '61 * * * *')", "processors.cron"),
            ("INSERT INTO depot.processors (name, kind, store, target_endpoint, cron) VALUES ('p', 'forwarding', 'orders', 'backend', 'every minute')", "processors.cron"),
            ("INSERT INTO depot.processors (name, kind, store, target_endpoint, cron) VALUES ('p', 'forwarding', 'orders', 'backend', E'* * * *\\n')", "processors.cron"),
            ("INSERT INTO depot.processors (name, kind, store, target_endpoint, fail_store) VALUES ('p', 'forwarding', 'orders', 'backend', 'orders')", "processors.fail_store"),
            ("INSERT INTO depot.endpoints (name, url) VALUES ('bad', 'not a url')", "endpoints.url"),
            ("INSERT INTO depot.endpoints (name, url, timeout_ms) VALUES ('bad', 'http://x/', 0)", "endpoints.timeout_ms"),
        ]
        for (statement, column) in cases {
            do {
                try await cluster.sql(statement)
                Issue.record("accepted: \(statement)")
            } catch let error as PostgresError {
                #expect(error.message.hasPrefix(column), "\(statement) → \(error.message)")
                #expect(error.hint != nil)
            }
        }
        #expect(try await cluster.integer("SELECT count(*) FROM depot.processors") == 0)
    }

    @Test("a row the node cannot run (an unknown handler) disables only that processor; the rest run")
    func badRowDisablesOnlyItself() async throws {
        let cluster = try await Cluster.fresh()
        let (echo, url) = try Cluster.echo()
        defer { echo.stop() }
        try await Self.forwarding(cluster, url: url) { $0.intervalMilliseconds = 0 }
        try await cluster.sql("""
            INSERT INTO depot.processors (name, kind, store, handler) VALUES ('sampler', 'sampling', 'orders', 'no-such-handler');
            INSERT INTO depot.processors (name, kind, store, target_endpoint, reply_handler) VALUES ('replier', 'forwarding', 'orders', 'backend', 'call:missing');
            """)
        let node = cluster.startNode("node-a")
        let disabled = try await eventually {
            try await cluster.integer("SELECT count(*) FROM depot.processors WHERE NOT is_active") == 2
        }
        #expect(disabled)
        let reasons = try await cluster.rows("SELECT name, deactivated_reason FROM depot.processors WHERE NOT is_active ORDER BY name")
            .map { try $0.decode((String, String).self) }
        #expect(reasons.first { $0.0 == "replier" }?.1.contains("reply_handler names endpoint \"missing\"") == true, "\(reasons)")
        #expect(reasons.first { $0.0 == "sampler" }?.1.contains("handler \"no-such-handler\" is not a handler") == true, "\(reasons)")
        _ = try await cluster.storeTexts("orders", count: 3)
        #expect(try await eventually { echo.snapshot().succeeded == 3 })
        #expect(await node.node.runningProcessors() == ["forwarder": 1])
        try await node.stop()
    }

    @Test("a row written before the rules (no target_endpoint) is disabled, and the node runs the rest")
    func legacyRowIsDisabled() async throws {
        let cluster = try await Cluster.fresh()
        let (echo, url) = try Cluster.echo()
        defer { echo.stop() }
        try await Self.forwarding(cluster, url: url) { $0.intervalMilliseconds = 0 }
        try await cluster.sql("""
            ALTER TABLE depot.processors DISABLE TRIGGER processors_check;
            INSERT INTO depot.processors (name, kind, store) VALUES ('legacy', 'forwarding', 'orders');
            ALTER TABLE depot.processors ENABLE TRIGGER processors_check;
            """)
        let node = cluster.startNode("node-a")
        let disabled = try await eventually {
            try await cluster.integer("SELECT count(*) FROM depot.processors WHERE name = 'legacy' AND NOT is_active AND deactivated_reason LIKE '%target_endpoint%'") == 1
        }
        #expect(disabled)
        _ = try await cluster.storeTexts("orders", count: 3)
        #expect(try await eventually { echo.snapshot().succeeded == 3 })
        try await node.stop()
    }

    @Test("a message whose header cannot go over HTTP is dead-lettered; the processor stays active")
    func unsendableHeader() async throws {
        let cluster = try await Cluster.fresh()
        let (echo, url) = try Cluster.echo()
        defer { echo.stop() }
        try await Self.forwarding(cluster, url: url) { $0.intervalMilliseconds = 0 }
        let node = cluster.startNode("node-a")
        _ = try await PostgresStore(name: "orders", pool: cluster.pool).store([
            OutgoingMessage(text: "split me", headers: ["X-Evil": "a\r\nX-Injected: 1"]),
            OutgoingMessage(text: "fine"),
        ])
        let settled = try await eventually {
            try await cluster.integer("SELECT count(*) FROM depot.dead_letters WHERE reason LIKE 'undeliverable%X-Evil%'") == 1
                && echo.snapshot().succeeded == 1
        }
        try await node.stop()
        #expect(settled)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.processors WHERE is_active") == 1)
        #expect(echo.snapshot().requests == 1)
    }

    @Test("stop is prompt while members sleep out a one-minute interval or wait for an hourly cron")
    func promptStop() async throws {
        let cluster = try await Cluster.fresh()
        let (echo, url) = try Cluster.echo()
        defer { echo.stop() }
        try await Self.forwarding(cluster, url: url) { $0.intervalMilliseconds = 60000; $0.memberCount = 2 }
        try await cluster.addProcessor("hourly", .forwarding, from: "orders") {
            $0.targetEndpoint = "backend"
            $0.cron = "0 * * * *"
        }
        // Stored first: the members' first claim takes it, then they sleep out the minute.
        _ = try await cluster.storeTexts("orders", count: 1)
        let node = cluster.startNode("node-a")
        #expect(try await eventually { echo.snapshot().succeeded == 1 })
        let stopped = Tally()
        Task {
            try await node.stop()
            _ = stopped.add("stopped")
        }
        #expect(try await eventually(timeout: .seconds(5)) { stopped.counts["stopped"] == 1 }, "stop waited for the interval")
    }

    @Test("sampling: each interval takes up to `concurrency` messages and runs the handler on each; a throw is retried")
    func sampling() async throws {
        let cluster = try await Cluster.fresh()
        let seen = Tally()
        var handlers = HandlerRegistry.stock
        handlers.register("collect") { context in
            let body = String(decoding: context.message.payload, as: UTF8.self)
            let attempt = seen.add(body)
            if body == "m3" && attempt == 1 { throw HandlerFailure("first try of m3 fails") }
        }
        try await cluster.addStore("orders")
        try await cluster.addProcessor("sampler", .sampling, from: "orders") {
            $0.handler = "collect"
            $0.intervalMilliseconds = 0
            $0.concurrency = 3
            $0.retryIntervalMilliseconds = 20
        }
        let node = cluster.startNode("node-a", handlers: handlers)
        _ = try await cluster.storeTexts("orders", count: 10)
        let drained = try await eventually { try await cluster.integer("SELECT count(*) FROM depot.messages") == 0 }
        try await node.stop()
        #expect(drained)
        #expect(Set(seen.counts.keys) == Set((0..<10).map { "m\($0)" }))
        #expect(seen.counts["m3"] == 2)
        #expect(seen.counts.filter { $0.key != "m3" }.values.allSatisfy { $0 == 1 })
    }

    @Test("8 members at interval 0 drain 50,000 messages: each handled once, no ack lost to a deadlock between members")
    func eightMembersAckAndClaim() async throws {
        let cluster = try await Cluster.fresh()
        let seen = Tally()
        var handlers = HandlerRegistry.stock
        handlers.register("count") { context in _ = seen.add(String(decoding: context.message.payload, as: UTF8.self)) }
        try await cluster.addStore("orders")
        try await cluster.addProcessor("sampler", .sampling, from: "orders") {
            $0.handler = "count"
            $0.intervalMilliseconds = 0
            $0.concurrency = 100
            $0.memberCount = 8
        }
        _ = try await cluster.storeTexts("orders", count: 50_000)
        let node = cluster.startNode("node-a", handlers: handlers)
        // Members ack a full batch and claim the next in one statement. If two such statements
        // deadlock, one rolls back with its acks, and those messages come again after the lease.
        let drained = try await eventually(timeout: .seconds(60)) {
            try await cluster.integer("SELECT count(*) FROM depot.messages") == 0
        }
        try await node.stop()
        #expect(drained)
        let counts = seen.counts
        #expect(counts.count == 50_000)
        let twice = counts.filter { $0.value > 1 }
        #expect(twice.isEmpty, "\(twice.count) messages handled more than once, e.g. \(twice.prefix(3))")
    }

    @Test("sampling with call:ENDPOINT sends each message to that endpoint")
    func samplingCallsAnEndpoint() async throws {
        let cluster = try await Cluster.fresh()
        let (echo, url) = try Cluster.echo()
        defer { echo.stop() }
        try await cluster.addStore("orders")
        try await cluster.addEndpoint("backend", url: url)
        try await cluster.addProcessor("sampler", .sampling, from: "orders") {
            $0.handler = "call:backend"
            $0.intervalMilliseconds = 0
            $0.concurrency = 4
        }
        let node = cluster.startNode("node-a")
        _ = try await cluster.storeTexts("orders", count: 8)
        let delivered = try await eventually { echo.snapshot().succeeded == 8 }
        try await node.stop()
        #expect(delivered)
        #expect(echo.snapshot().distinct == 8)
    }

    @Test("failover-forwarding drains a memory failover store into the primary store, keeping ids")
    func failoverForwarding() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.addStore("failover", kind: .memory)
        try await cluster.addStore("Orginal", failoverStore: "failover", guaranteedDelivery: true)
        try await cluster.addProcessor("FailoverMessageProcessor", .failoverForwarding, from: "failover") {
            $0.targetStore = "Orginal"
            $0.intervalMilliseconds = 0
            $0.batchSize = 10
        }
        let stores = StoreDirectory(pool: cluster.pool)
        let failover = try stores.store(named: "failover", kind: .memory)
        let ids = try await failover.store((0..<25).map { OutgoingMessage(text: "held \($0)") }).map(\.id)
        let node = cluster.startNode("node-a", stores: stores)
        let moved = try await eventually { try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'Orginal'") == 25 }
        try await node.stop()
        #expect(moved)
        let primaryIDs = try await cluster.rows("SELECT id FROM depot.messages WHERE store = 'Orginal'").map { try $0.decode(at: 0, as: UUID.self) }
        #expect(Set(primaryIDs) == Set(ids))
        #expect(try await failover.counts().total == 0)
    }

    @Test("a cron expression (six fields, every second) drains the store at each fire")
    func cron() async throws {
        let cluster = try await Cluster.fresh()
        let (echo, url) = try Cluster.echo()
        defer { echo.stop() }
        try await Self.forwarding(cluster, url: url) { $0.cron = "* * * * * *"; $0.batchSize = 2 }
        let node = cluster.startNode("node-a")
        _ = try await cluster.storeTexts("orders", count: 7)
        let drained = try await eventually(timeout: .seconds(20)) { echo.snapshot().succeeded == 7 }
        try await node.stop()
        #expect(drained)
        let times = echo.arrivalTimes()
        // A fire drains the store (in batches of 2), so they arrive together; paced by the
        // 1 s interval instead they would take 3 s. A loaded machine may split them over two fires.
        #expect(times.last! - times.first! < .milliseconds(2000), "arrivals spread over \(times.last! - times.first!)")
    }
}

/// Counts by key, safe from many tasks.
final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [String: Int] = [:]
    /// Adds one to `key`; returns its new count.
    func add(_ key: String) -> Int {
        lock.withLock {
            values[key, default: 0] += 1
            return values[key]!
        }
    }
    var counts: [String: Int] { lock.withLock { values } }
}
