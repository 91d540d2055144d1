import Depot
import DepotHTTP
import Foundation
import Postgres
import Testing
import TestSupport

/// The SQL admin surface (migration 0003): each function changes what the views show, and
/// in-process nodes follow. Back ends are real HTTP servers.
@Suite("Admin SQL: views and functions")
struct AdminSQLTests {
    /// A store `orders`, an endpoint at `url` and a forwarding processor `forwarder` (interval 0).
    static func forwarding(_ cluster: Cluster, url: String, _ configure: (inout ProcessorDefinition) -> Void = { _ in }) async throws {
        try await NodeBehaviourTests.forwarding(cluster, url: url) {
            $0.intervalMilliseconds = 0
            configure(&$0)
        }
    }

    /// The one row of `depot.processor_status` for `name`.
    static func status(_ cluster: Cluster, _ name: String = "forwarder") async throws -> ProcessorStatus? {
        try await ProcessorAdmin(pool: cluster.pool).status().first { $0.name == name }
    }

    /// The PostgresError `body` throws, if any.
    static func refusal(_ body: () async throws -> Void) async -> PostgresError? {
        do { try await body() } catch let error as PostgresError { return error } catch { return nil }
        return nil
    }

    @Test("deactivate_processor stops the node's deliveries and processor_status says why; activate_processor resumes")
    func deactivateAndActivate() async throws {
        let cluster = try await Cluster.fresh()
        let (echo, url) = try Cluster.echo()
        defer { echo.stop() }
        try await Self.forwarding(cluster, url: url) { $0.memberCount = 2 }
        let node = cluster.startNode("node-a")
        _ = try await cluster.storeTexts("orders", count: 5)
        #expect(try await eventually { echo.snapshot().succeeded == 5 })

        // The node reports what it runs and what it delivered with its heartbeats (1 s in tests).
        let reported = try await eventually(timeout: .seconds(10)) {
            let status = try await Self.status(cluster)
            return status?.nodes == ["node-a": 2] && status?.delivered5m == 5
        }
        let shown = try await Self.status(cluster)
        #expect(reported, "processor_status: \(String(describing: shown))")
        let nodes = try await NodeCatalog(pool: cluster.pool).status()
        #expect(nodes.map(\.name) == ["node-a"])
        #expect(nodes.first?.alive == true)
        #expect(nodes.first?.processors == ["forwarder": 2])
        #expect(nodes.first?.members == 2)

        #expect(try await cluster.rows("SELECT depot.deactivate_processor('forwarder', 'billing maintenance')").first?.decode(at: 0) == true)
        #expect(try await cluster.rows("SELECT depot.deactivate_processor('forwarder')").first?.decode(at: 0) == false)
        #expect(try await eventually(timeout: .seconds(5)) { await node.node.runningProcessors().isEmpty })
        _ = try await cluster.storeTexts("orders", count: 3, prefix: "later")
        try await Task.sleep(for: .milliseconds(700))  // nothing may arrive while it is off
        #expect(echo.snapshot().requests == 5)
        let stopped = try await eventually(timeout: .seconds(10)) { try await Self.status(cluster)?.nodes.isEmpty == true }
        #expect(stopped)
        let inactive = try #require(try await Self.status(cluster))
        #expect(!inactive.active)
        #expect(inactive.deactivatedReason == "billing maintenance")  // the second call kept the first reason

        #expect(try await ProcessorAdmin(pool: cluster.pool).activate("forwarder"))
        #expect(try await ProcessorAdmin(pool: cluster.pool).activate("forwarder") == false)
        #expect(try await eventually(timeout: .seconds(10)) { echo.snapshot().succeeded == 8 })
        let resumed = try await eventually(timeout: .seconds(10)) {
            let status = try await Self.status(cluster)
            return status?.active == true && status?.deactivatedReason == nil && status?.delivered5m == 8
        }
        #expect(resumed)
        try await node.stop()
        // A node that stopped cleanly is gone from node_status, and from the processor's nodes.
        #expect(try await NodeCatalog(pool: cluster.pool).status().isEmpty)
        #expect(try await Self.status(cluster)?.nodes.isEmpty == true)
    }

    @Test("activate_processor and deactivate_processor refuse an unknown name with a hint")
    func unknownProcessor() async throws {
        let cluster = try await Cluster.fresh()
        for call in ["SELECT depot.activate_processor('nope')", "SELECT depot.deactivate_processor('nope', 'why')"] {
            let error = await Self.refusal { try await cluster.sql(call) }
            #expect(error?.sqlState == SQLState("42704"), "\(call): \(String(describing: error))")
            #expect(error?.message == "processor \"nope\" does not exist")
            #expect(error?.hint?.contains("depot.processors") == true)
        }
        await #expect(throws: AdminError.self) { try await ProcessorAdmin(pool: cluster.pool).deactivate("nope") }
    }

    @Test("failures show in processor_status with the last error; resend_dead_letters puts dead letters back and a node delivers them")
    func failuresAndResend() async throws {
        let cluster = try await Cluster.fresh()
        // Every message fails its first 2 attempts; 2 attempts are allowed, then the dead letters.
        let (echo, url) = try Cluster.echo(.init(failFirst: 2, failStatus: 503))
        defer { echo.stop() }
        try await Self.forwarding(cluster, url: url) {
            $0.retryIntervalMilliseconds = 0
            $0.maxDeliveryAttempts = 2
            $0.maxDeliveryDrop = true
        }
        let node = cluster.startNode("node-a")
        let ids = try await cluster.storeTexts("orders", count: 3)
        #expect(try await eventually { try await cluster.integer("SELECT count(*) FROM depot.dead_letters") == 3 })
        let failed = try await eventually(timeout: .seconds(10)) {
            let status = try await Self.status(cluster)
            return status?.failed5m == 6 && status?.deadLettered5m == 3
        }
        let status = try #require(try await Self.status(cluster))
        #expect(failed, "\(status)")
        #expect(status.lastError?.contains("503") == true, "last_error: \(String(describing: status.lastError))")
        #expect(status.lastErrorAt != nil)
        let stats = try #require(try await StoreCatalog(pool: cluster.pool).statistics().first { $0.store == "orders" })
        #expect(stats.deadLetters == 3 && stats.ready == 0 && !stats.estimated)

        // One by id, then the rest of the store; ids are kept and attempts start again.
        #expect(try await cluster.integer("SELECT depot.resend_dead_letters(ids => ARRAY['\(ids[0])']::uuid[])") == 1)
        #expect(try await eventually { echo.snapshot().succeeded == 1 })
        #expect(try await cluster.integer("SELECT depot.resend_dead_letters('orders')") == 2)
        #expect(try await eventually { echo.snapshot().succeeded == 3 })
        #expect(Set(echo.snapshot().byMessage.keys.map { $0.lowercased() }) == Set(ids.map { $0.uuidString.lowercased() }))
        #expect(try await cluster.integer("SELECT count(*) FROM depot.dead_letters") == 0)
        #expect(try await eventually { try await cluster.integer("SELECT count(*) FROM depot.messages") == 0 })  // acked after the answer
        let delivered = try await eventually(timeout: .seconds(10)) { try await Self.status(cluster)?.delivered5m == 3 }
        #expect(delivered)
        try await node.stop()
    }

    @Test("resend_dead_letters leaves a dead letter whose id is a message again, filters by store and ids, and refuses an unknown store")
    func resendIsConflictSafe() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders'), ('other')")
        let orders = PostgresStore(name: "orders", pool: cluster.pool)
        let ids = try await cluster.storeTexts("orders", count: 3) + cluster.storeTexts("other", count: 1)
        for store in [orders, PostgresStore(name: "other", pool: cluster.pool)] {
            for message in try await store.claim(limit: 10, consumer: "op", lease: .seconds(30)) {
                try await store.deadLetter(message.id, consumer: "op", reason: DeadLetterReason("test"))
            }
        }
        // ids[0] is a message again (a producer stored it anew with that id).
        try await cluster.sql("""
            INSERT INTO depot.messages (id, store, payload) VALUES ('\(ids[0])', 'orders', 'again')
            """)
        #expect(try await DeadLetterAdmin(pool: cluster.pool).resend(ids: [ids[0]]) == 0)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.dead_letters WHERE id = '\(ids[0])'") == 1)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 1)

        #expect(try await DeadLetterAdmin(pool: cluster.pool).resend(store: "orders", ids: [ids[1], ids[3]]) == 1)
        #expect(try await DeadLetterAdmin(pool: cluster.pool).resend(store: "other") == 1)
        let back = try await cluster.rows("SELECT store, attempts, locked_by FROM depot.messages WHERE id = '\(ids[3])'")
        let (store, attempts, lockedBy) = try #require(back.first).decode((String, Int, String?).self)
        #expect(store == "other" && attempts == 0 && lockedBy == nil)
        #expect(try await DeadLetterAdmin(pool: cluster.pool).list().map(\.id).sorted { $0.uuidString < $1.uuidString }
                == [ids[0], ids[2]].sorted { $0.uuidString < $1.uuidString })

        let error = await Self.refusal { try await cluster.sql("SELECT depot.resend_dead_letters('nowhere')") }
        #expect(error?.message == "store \"nowhere\" is not declared")
        #expect(error?.hint != nil)
        #expect(try await DeadLetterAdmin(pool: cluster.pool).purge(store: "orders", ids: [ids[2]]) == 1)
        #expect(try await DeadLetterAdmin(pool: cluster.pool).purge() == 1)
        #expect(try await StoreCatalog(pool: cluster.pool).statistics().allSatisfy { $0.deadLetters == 0 })
    }

    @Test("purge_store empties the store (in flight too) and store_stats shows it; an undeclared store is refused")
    func purgeStore() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders'), ('kept')")
        _ = try await cluster.storeTexts("orders", count: 5)
        _ = try await cluster.storeTexts("kept", count: 2)
        _ = try await PostgresStore(name: "orders", pool: cluster.pool).claim(limit: 2, consumer: "c", lease: .seconds(30))
        var stats = try await StoreCatalog(pool: cluster.pool).statistics()
        #expect(stats.first { $0.store == "orders" }.map { [$0.ready, $0.inFlight] } == [3, 2])
        #expect(try await cluster.integer("SELECT depot.purge_store('orders')") == 5)
        stats = try await StoreCatalog(pool: cluster.pool).statistics()
        #expect(stats.first { $0.store == "orders" }.map { [$0.ready, $0.delayed, $0.inFlight] } == [0, 0, 0])
        #expect(stats.first { $0.store == "kept" }?.ready == 2)
        let error = await Self.refusal { try await cluster.sql("SELECT depot.purge_store('nowhere')") }
        #expect(error?.sqlState == SQLState("42704"))
        await #expect(throws: AdminError.self) { try await StoreCatalog(pool: cluster.pool).purge("nowhere") }
    }

    @Test("peek lists the next messages in delivery order with their state and a payload preview, taking none")
    func peekShowsDeliveryOrder() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let store = PostgresStore(name: "orders", pool: cluster.pool)
        var urgent = OutgoingMessage(text: "urgent")
        urgent.priority = 5
        var later = OutgoingMessage(text: "later")
        later.delay = .seconds(3600)
        let binary = OutgoingMessage(payload: Data([0x00, 0xFF, 0x41]))
        let long = OutgoingMessage(text: String(repeating: "é", count: 150))  // 300 bytes: cut inside no character
        let first = try await store.store(OutgoingMessage(text: "first")).id
        let ids = try await store.store([later, binary, long, urgent]).map(\.id)
        _ = try await store.claim(limit: 1, consumer: "c", lease: .seconds(30))  // takes urgent

        let peeked = try await StoreCatalog(pool: cluster.pool).peek("orders", limit: 10)
        #expect(peeked.map(\.id) == [ids[3], first, ids[0], ids[1], ids[2]])
        #expect(peeked.map(\.state) == ["in_flight", "ready", "delayed", "ready", "ready"])
        #expect(peeked.map(\.preview) == ["urgent", "first", "later", "\\000\\377A", String(repeating: "é", count: 100) + "…"])
        #expect(peeked[0].attempts == 1 && peeked[0].priority == 5)
        #expect(try await StoreCatalog(pool: cluster.pool).peek("orders", limit: 2).map(\.id) == [ids[3], first])
        #expect(try await store.counts().ready == 3)  // peeking took nothing

        await #expect(throws: AdminError.self) { try await StoreCatalog(pool: cluster.pool).peek("orders", limit: 0) }
        let error = await Self.refusal { try await cluster.sql("SELECT * FROM depot.peek('nowhere')") }
        #expect(error?.message == "store \"nowhere\" is not declared")
    }

    @Test("node_status: a node whose heartbeat is 3 intervals old is not alive, and processor_status leaves it out")
    func staleNodes() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('orders');
            INSERT INTO depot.processors (name, kind, store, handler) VALUES ('audit', 'sampling', 'orders', 'log');
            INSERT INTO depot.nodes (name, heartbeat_at, heartbeat_interval_ms, processors)
            VALUES ('stale', now() - interval '4 seconds', 1000, '{"audit": 3}'),
                   ('fresh', now() - interval '2 seconds', 60000, '{"audit": 1}'),
                   ('old-node', now() - interval '4 seconds', NULL, '{}');
            """)
        let nodes = try await NodeCatalog(pool: cluster.pool).status()
        #expect(nodes.map(\.name) == ["fresh", "old-node", "stale"])
        // stale: 4 s > 3 × 1 s; fresh: 3 minutes of grace; old-node (no interval): 5 s, so 15 s.
        #expect(nodes.map(\.alive) == [true, true, false])
        #expect(try await Self.status(cluster, "audit")?.nodes == ["fresh": 1])
    }

    @Test("store_stats counts up to 100,000 messages exactly and estimates past that, saying so")
    func storeStatsEstimatesBigStores() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('big'), ('small');
            INSERT INTO depot.messages (store, payload, available_at)
            SELECT 'big', '\\x00', CASE WHEN g % 4 = 0 THEN now() + interval '1 hour' ELSE now() END
            FROM generate_series(1, 120000) g;
            ANALYZE depot.messages;
            """)
        _ = try await cluster.storeTexts("small", count: 3)
        let stats = try await StoreCatalog(pool: cluster.pool).statistics()
        let big = try #require(stats.first { $0.store == "big" })
        #expect(big.estimated)
        // ANALYZE samples, so allow its error; the split follows the 3:1 seen at the head.
        #expect(abs(big.ready + big.delayed - 120_000) < 6_000, "\(big)")
        #expect(abs(Double(big.ready) / Double(big.ready + big.delayed) - 0.75) < 0.01, "\(big)")
        #expect(big.inFlight == 0 && big.oldestReadyAgeSeconds != nil)
        let small = try #require(stats.first { $0.store == "small" })
        #expect(!small.estimated && small.ready == 3)
        // PostgresStore.counts() reads the same view.
        #expect(try await PostgresStore(name: "small", pool: cluster.pool).counts().ready == 3)
    }

    @Test("heartbeats add activity to processor_stats by minute and prune rows older than an hour")
    func heartbeatWritesActivity() async throws {
        let cluster = try await Cluster.fresh()
        let registry = NodeRegistry(pool: cluster.pool)
        try await registry.register("n1", host: "h", pid: 1, version: "t", heartbeatInterval: .seconds(1))
        try await cluster.sql("""
            INSERT INTO depot.processor_stats (processor, node, minute, delivered) VALUES ('p', 'n1', now() - interval '2 hours', 9)
            """)
        let at = Date()
        #expect(try await registry.heartbeat("n1", running: ["p": 2], heartbeatInterval: .seconds(1), activity: [
            ProcessorActivity(processor: "p", delivered: 3, failed: 1, lastError: "HTTP 503", lastErrorAt: at),
        ]))
        #expect(try await registry.heartbeat("n1", running: ["p": 2], heartbeatInterval: .seconds(1), activity: [
            ProcessorActivity(processor: "p", delivered: 2),
        ]))
        #expect(try await cluster.integer("SELECT count(*) FROM depot.processor_stats WHERE minute < now() - interval '1 hour'") == 0)
        // The two beats may straddle a minute; sum them.
        #expect(try await cluster.integer("SELECT sum(delivered)::bigint FROM depot.processor_stats") == 5)
        #expect(try await cluster.integer("SELECT sum(failed)::bigint FROM depot.processor_stats") == 1)
        #expect(try await cluster.rows("SELECT last_error FROM depot.processor_stats WHERE last_error IS NOT NULL")
            .first?.decode(at: 0, as: String.self) == "HTTP 503")
        #expect(try await registry.heartbeat("gone", running: [:], heartbeatInterval: .seconds(1), activity: []) == false)
    }

    @Test("NodeMetrics hands out activity once, and takes back what could not be written")
    func metricsActivity() {
        let metrics = NodeMetrics()
        metrics.record(.delivered, processor: "p")
        metrics.record(.failed, processor: "p", error: "first")
        metrics.record(.retried, processor: "p")
        metrics.record(.failed, processor: "p", error: "second")
        metrics.record(.deadLettered, processor: "q")
        let taken = metrics.takeActivity()
        #expect(taken.map(\.processor) == ["p", "q"])
        #expect(taken[0].delivered == 1 && taken[0].failed == 2 && taken[0].lastError == "second")
        #expect(taken[1].deadLettered == 1 && taken[1].lastError == nil)
        #expect(metrics.takeActivity().isEmpty)
        metrics.restoreActivity(taken)
        metrics.record(.delivered, processor: "p")
        let again = metrics.takeActivity()
        #expect(again.first?.delivered == 2 && again.first?.lastError == "second")
        #expect(metrics.count(.failed, processor: "p") == 2)  // the Prometheus counters are untouched
    }
}
