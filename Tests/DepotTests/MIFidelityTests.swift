import Depot
import DepotHTTP
import Foundation
import Postgres
import Testing
import TestSupport

/// What WSO2 Micro Integrator users rely on, run by nodes in this process against real
/// PostgreSQL and real HTTP back ends on loopback.
@Suite("Behaving as Micro Integrator users expect")
struct MIFidelityTests {
    @Test("fail store without drop: after its attempts the message is in the fail store, the processor stays active and delivers the next")
    func failStoreWithoutDrop() async throws {
        let cluster = try await Cluster.fresh()
        // Refuses the message whose body is "poison", takes the rest.
        let backEnd = try RecordingBackEnd { request in
            HTTPResponse(status: request.body == Data("poison".utf8) ? 500 : 200)
        }
        defer { backEnd.stop() }
        try await cluster.addStore("orders")
        try await cluster.addStore("orders-failed")
        try await cluster.addEndpoint("backend", url: "http://127.0.0.1:\(backEnd.port)/in")
        try await cluster.addProcessor("forwarder", .forwarding, from: "orders") {
            $0.targetEndpoint = "backend"
            $0.intervalMilliseconds = 0
            $0.retryIntervalMilliseconds = 50
            $0.maxDeliveryAttempts = 3
            $0.maxDeliveryDrop = false
            $0.failStore = "orders-failed"
        }
        let store = PostgresStore(name: "orders", pool: cluster.pool)
        let poison = try await store.store(OutgoingMessage(text: "poison")).id
        _ = try await store.store(OutgoingMessage(text: "next"))
        let node = cluster.startNode("node-a")
        let settled = try await eventually(timeout: .seconds(20)) {
            try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'orders'") == 0
        }
        try await node.stop()
        #expect(settled)
        let failed = try await cluster.rows("SELECT id FROM depot.messages WHERE store = 'orders-failed'").map { try $0.decode(at: 0, as: UUID.self) }
        #expect(failed == [poison], "the poison message moved to the fail store under its id")
        #expect(try await cluster.integer("SELECT count(*) FROM depot.processors WHERE is_active") == 1, "still active")
        #expect(try await cluster.integer("SELECT count(*) FROM depot.dead_letters") == 0)
    }

    @Test("reply, fault and deactivate handlers get what happened; call:X as a reply handler posts the reply's body")
    func handlersSeeWhatHappened() async throws {
        let cluster = try await Cluster.fresh()
        // Answers "reply to <body>" with its own content type, or 503 for a body starting "fail".
        let backEnd = try RecordingBackEnd { request in
            let body = String(decoding: request.body, as: UTF8.self)
            if body.hasPrefix("fail") { return HTTPResponse(status: 503, body: Data("busy".utf8)) }
            return HTTPResponse(status: 200, headers: ["Content-Type": "text/x-reply"], body: Data("reply to \(body)".utf8))
        }
        defer { backEnd.stop() }
        let sink = try RecordingBackEnd()
        defer { sink.stop() }
        let seen = Recorder()
        var handlers = HandlerRegistry.stock
        for name in ["record-reply", "record-fault", "record-deactivation"] {
            handlers.register(name) { context in seen.add(name, context) }
        }
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('good'), ('bad'), ('called');
            INSERT INTO depot.endpoints (name, url) VALUES ('backend', 'http://127.0.0.1:\(backEnd.port)/in'), ('sink', '\(sink.url)');
            INSERT INTO depot.processors (name, kind, store, target_endpoint, interval_ms, reply_handler)
            VALUES ('replies', 'forwarding', 'good', 'backend', 0, 'record-reply'),
                   ('calls', 'forwarding', 'called', 'backend', 0, 'call:sink');
            INSERT INTO depot.processors (name, kind, store, target_endpoint, interval_ms, retry_interval_ms,
                                          max_delivery_attempts, fault_handler, deactivate_handler)
            VALUES ('faults', 'forwarding', 'bad', 'backend', 0, 50, 2, 'record-fault', 'record-deactivation');
            """)
        _ = try await PostgresStore(name: "good", pool: cluster.pool).store(OutgoingMessage(text: "hello"))
        _ = try await PostgresStore(name: "bad", pool: cluster.pool).store(OutgoingMessage(text: "fail me"))
        _ = try await PostgresStore(name: "called", pool: cluster.pool).store(OutgoingMessage(text: "ping"))
        let node = cluster.startNode("node-a", handlers: handlers)
        let done = try await eventually(timeout: .seconds(20)) {
            seen.count("record-deactivation") == 1 && seen.count("record-reply") == 1 && sink.received.count == 1
        }
        try await node.stop()
        #expect(done, "seen: \(seen.names)")

        let reply = try #require(seen.first("record-reply"))
        #expect(reply.role == .reply)
        #expect(reply.response?.status == 200)
        #expect(reply.response?.body == Data("reply to hello".utf8))
        #expect(reply.response?.headers["Content-Type"] == "text/x-reply")
        #expect(reply.message.payload == Data("hello".utf8))

        #expect(seen.count("record-fault") == 2, "one fault per failed attempt")
        let fault = try #require(seen.first("record-fault"))
        #expect(fault.role == .fault)
        #expect(fault.response?.status == 503)
        #expect(fault.failure?.contains("answered 503") == true, "\(fault.failure ?? "nil")")
        #expect(fault.message.payload == Data("fail me".utf8))

        let deactivation = try #require(seen.first("record-deactivation"))
        #expect(deactivation.role == .deactivation)
        #expect(deactivation.failure?.contains("2 delivery attempts") == true, "\(deactivation.failure ?? "nil")")
        #expect(deactivation.message.payload == Data("fail me".utf8))

        // call:sink as the reply handler sent the reply's body, not the request again.
        #expect(sink.received.map(\.body) == [Data("reply to ping".utf8)])
    }
}

/// Handler contexts by handler name, from any task.
private final class Recorder: @unchecked Sendable {
    private let lock = NSLock()
    private var contexts: [(String, HandlerContext)] = []
    func add(_ name: String, _ context: HandlerContext) { lock.withLock { contexts.append((name, context)) } }
    func count(_ name: String) -> Int { lock.withLock { contexts.filter { $0.0 == name }.count } }
    func first(_ name: String) -> HandlerContext? { lock.withLock { contexts.first { $0.0 == name }?.1 } }
    var names: [String] { lock.withLock { contexts.map(\.0) } }
}

