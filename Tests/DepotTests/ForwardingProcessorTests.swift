import Depot
import DepotHTTP
import Foundation
import Postgres
import Testing
import TestSupport

/// Forwarding processors as seeds 002 and 003 describe them, run by nodes in this process
/// against real PostgreSQL and real HTTP back ends on loopback.
@Suite("Forwarding processors")
struct ForwardingProcessorTests {
    @Test("seed 002: three processors on one store spread 3,000 messages over three back ends, each exactly once")
    func loadBalancing() async throws {
        let cluster = try await Cluster.fresh()
        let backEnds = try (1...3).map { _ in try Cluster.echo() }
        defer { backEnds.forEach { $0.0.stop() } }
        try await cluster.addStore("JMSMS")
        for (index, (_, url)) in backEnds.enumerated() {
            try await cluster.addEndpoint("SimpleStockQuoteService\(index + 1)", url: url)
            try await cluster.addProcessor("Forwarder\(index + 1)", .forwarding, from: "JMSMS") {
                $0.targetEndpoint = "SimpleStockQuoteService\(index + 1)"
                $0.intervalMilliseconds = 0
                $0.batchSize = 10
            }
        }
        let node = cluster.startNode("node-a")
        let ids = try await cluster.storeTexts("JMSMS", count: 3000)
        let delivered = try await eventually(timeout: .seconds(60)) {
            backEnds.map { $0.0.snapshot().succeeded }.reduce(0, +) >= 3000
        }
        try await node.stop()
        #expect(delivered)
        let counts = backEnds.map { $0.0.snapshot() }
        var seen: [String: Int] = [:]
        for count in counts { seen.merge(count.byMessage, uniquingKeysWith: +) }
        #expect(seen.count == 3000, "distinct ids delivered: \(seen.count)")
        #expect(seen.values.allSatisfy { $0 == 1 }, "some message was delivered more than once")
        #expect(Set(seen.keys) == Set(ids.map { $0.uuidString.lowercased() }))
        for count in counts { #expect(count.requests >= 300, "a back end got only \(count.requests) of 3000") }
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 0)
    }

    @Test("seed 003: a back end failing the first 3 attempts of each message, max 4 attempts: all delivered")
    func retriesUntilDelivered() async throws {
        let cluster = try await Cluster.fresh()
        let (echo, url) = try Cluster.echo(.init(failFirst: 3))
        defer { echo.stop() }
        try await cluster.addStore("Orginal")
        try await cluster.addEndpoint("SimpleStockQuoteService", url: url)
        try await cluster.addProcessor("ForwardMessageProcessor", .forwarding, from: "Orginal") {
            $0.targetEndpoint = "SimpleStockQuoteService"
            $0.intervalMilliseconds = 0
            $0.retryIntervalMilliseconds = 50
            $0.maxDeliveryAttempts = 4
        }
        let node = cluster.startNode("node-a")
        _ = try await cluster.storeTexts("Orginal", count: 10)
        let delivered = try await eventually(timeout: .seconds(30)) { echo.snapshot().succeeded == 10 }
        try await node.stop()
        #expect(delivered)
        let counts = echo.snapshot()
        #expect(counts.distinct == 10)
        #expect(counts.byMessage.values.allSatisfy { $0 == 4 }, "attempts per message: \(counts.byMessage.values.sorted())")
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 0)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.processors WHERE is_active") == 1)
    }

    @Test("failing always without drop: the processor deactivates, the message stays with 4 attempts; reactivated, it is delivered")
    func deactivatesAndResumes() async throws {
        let cluster = try await Cluster.fresh()
        let (echo, url) = try Cluster.echo(.init(failRate: 1))
        defer { echo.stop() }
        try await cluster.addStore("orders")
        try await cluster.addEndpoint("backend", url: url)
        try await cluster.addProcessor("forwarder", .forwarding, from: "orders") {
            $0.targetEndpoint = "backend"
            $0.intervalMilliseconds = 0
            $0.retryIntervalMilliseconds = 50
            $0.maxDeliveryAttempts = 4
            $0.maxDeliveryDrop = false
        }
        let node = cluster.startNode("node-a")
        let ids = try await cluster.storeTexts("orders", count: 1)
        let deactivated = try await eventually(timeout: .seconds(20)) {
            try await cluster.integer("SELECT count(*) FROM depot.processors WHERE NOT is_active AND deactivated_reason IS NOT NULL") == 1
        }
        #expect(deactivated)
        let reason: String = try await cluster.rows("SELECT deactivated_reason FROM depot.processors").first!.decode(at: 0)
        #expect(reason.contains("4 delivery attempts") && reason.contains("503"), "reason: \(reason)")
        let stopped = try await eventually { await node.node.runningProcessors().isEmpty }
        #expect(stopped)
        let rows = try await cluster.rows("SELECT id, attempts, locked_until IS NULL OR locked_until <= now() FROM depot.messages")
        #expect(rows.count == 1)
        let (id, attempts, free) = try rows.first!.decode((UUID, Int, Bool).self)
        #expect(id == ids[0])
        #expect(attempts == 4)
        #expect(free, "the message must be back in line, not leased")
        #expect(echo.snapshot().requests == 4)

        echo.update(.init())  // the back end is fixed
        try await cluster.sql("UPDATE depot.processors SET is_active = true WHERE name = 'forwarder'")
        let delivered = try await eventually(timeout: .seconds(10)) { echo.snapshot().succeeded == 1 }
        try await node.stop()
        #expect(delivered)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 0)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.processors WHERE deactivated_reason IS NULL AND is_active") == 1)
    }

    @Test("drop true: after the last attempt the message is a dead letter with reason, status, processor and node")
    func dropsToDeadLetters() async throws {
        let cluster = try await Cluster.fresh()
        let (echo, url) = try Cluster.echo(.init(failRate: 1))
        defer { echo.stop() }
        try await cluster.addStore("orders")
        try await cluster.addEndpoint("backend", url: url)
        try await cluster.addProcessor("forwarder", .forwarding, from: "orders") {
            $0.targetEndpoint = "backend"
            $0.intervalMilliseconds = 0
            $0.retryIntervalMilliseconds = 20
            $0.maxDeliveryAttempts = 3
            $0.maxDeliveryDrop = true
        }
        let node = cluster.startNode("node-a")
        let ids = try await cluster.storeTexts("orders", count: 2)
        let dead = try await eventually(timeout: .seconds(20)) { try await cluster.integer("SELECT count(*) FROM depot.dead_letters") == 2 }
        try await node.stop()
        #expect(dead)
        let rows = try await cluster.rows("SELECT id, attempts, reason, status_code, processor, node FROM depot.dead_letters ORDER BY id")
        for row in rows {
            let (id, attempts, reason, status, processor, nodeName) = try row.decode((UUID, Int, String, Int?, String?, String?).self)
            #expect(ids.contains(id))
            #expect(attempts == 3)
            #expect(reason.contains("max delivery attempts (3)"), "reason: \(reason)")
            #expect(status == 503)
            #expect(processor == "forwarder")
            #expect(nodeName == "node-a")
        }
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 0)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.processors WHERE is_active") == 1, "drop must not deactivate")
    }

    @Test("a status in non_retry_status_codes dead-letters after one attempt")
    func nonRetryStatus() async throws {
        let cluster = try await Cluster.fresh()
        let (echo, url) = try Cluster.echo(.init(failRate: 1, failStatus: 422))
        defer { echo.stop() }
        try await cluster.addStore("orders")
        try await cluster.addEndpoint("backend", url: url)
        try await cluster.addProcessor("forwarder", .forwarding, from: "orders") {
            $0.targetEndpoint = "backend"
            $0.intervalMilliseconds = 0
            $0.retryIntervalMilliseconds = 20
            $0.nonRetryStatusCodes = [400, 422]
        }
        let node = cluster.startNode("node-a")
        _ = try await cluster.storeTexts("orders", count: 1)
        let dead = try await eventually(timeout: .seconds(10)) { try await cluster.integer("SELECT count(*) FROM depot.dead_letters") == 1 }
        try await node.stop()
        #expect(dead)
        let (attempts, status, reason) = try await cluster.rows("SELECT attempts, status_code, reason FROM depot.dead_letters").first!.decode((Int, Int?, String).self)
        #expect(attempts == 1)
        #expect(status == 422)
        #expect(reason.contains("non-retry status 422"))
        #expect(echo.snapshot().requests == 1)
    }

    @Test("max_delivery_drop with a fail_store moves the message there under the same id")
    func dropsToFailStore() async throws {
        let cluster = try await Cluster.fresh()
        let (echo, url) = try Cluster.echo(.init(failRate: 1))
        defer { echo.stop() }
        try await cluster.addStore("orders")
        try await cluster.addStore("failed-orders")
        try await cluster.addEndpoint("backend", url: url)
        try await cluster.addProcessor("forwarder", .forwarding, from: "orders") {
            $0.targetEndpoint = "backend"
            $0.intervalMilliseconds = 0
            $0.retryIntervalMilliseconds = 20
            $0.maxDeliveryAttempts = 2
            $0.maxDeliveryDrop = true
            $0.failStore = "failed-orders"
        }
        let node = cluster.startNode("node-a")
        let ids = try await cluster.storeTexts("orders", count: 1)
        let moved = try await eventually(timeout: .seconds(10)) {
            try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'failed-orders'") == 1
        }
        try await node.stop()
        #expect(moved)
        let id: UUID = try await cluster.rows("SELECT id FROM depot.messages WHERE store = 'failed-orders'").first!.decode(at: 0)
        #expect(id == ids[0])
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'orders'") == 0)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.dead_letters") == 0)
    }

    @Test("the request carries the payload, content type, message headers, endpoint headers, Depot-Message-Id and Depot-Attempt")
    func requestShape() async throws {
        let cluster = try await Cluster.fresh()
        let received = RequestRecorder()
        let server = HTTPServer(.init()) { request in
            received.record(request)
            return .text(200, "thanks")
        }
        try server.start()
        defer { server.stop() }
        try await cluster.addStore("orders")
        try await cluster.addEndpoint("backend", url: "http://127.0.0.1:\(server.port)/orders?src=depot", method: "PUT",
                                      headers: ["Authorization": "Bearer t0k"])
        try await cluster.addProcessor("forwarder", .forwarding, from: "orders") {
            $0.targetEndpoint = "backend"
            $0.intervalMilliseconds = 0
        }
        let node = cluster.startNode("node-a")
        let payload = Data([0, 1, 2, 255])
        let receipt = try await PostgresStore(name: "orders", pool: cluster.pool).store(
            OutgoingMessage(payload: payload, headers: ["X-Order": "7", "Trace": "żółw"], contentType: "application/x-order"))
        let arrived = try await eventually { received.all.count == 1 }
        try await node.stop()
        #expect(arrived)
        let request = try #require(received.all.first)
        #expect(request.method == "PUT")
        #expect(request.target == "/orders?src=depot")
        #expect(request.body == payload)
        #expect(request.headers["Content-Type"] == "application/x-order")
        #expect(request.headers["X-Order"] == "7")
        #expect(request.headers["Trace"] == "żółw")
        #expect(request.headers["Authorization"] == "Bearer t0k")
        #expect(request.headers["Depot-Message-Id"] == receipt.id.uuidString.lowercased())
        #expect(request.headers["Depot-Attempt"] == "1")
    }
}

/// Requests a test server received.
final class RequestRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var requests: [HTTPRequest] = []
    func record(_ request: HTTPRequest) { lock.withLock { requests.append(request) } }
    var all: [HTTPRequest] { lock.withLock { requests } }
}
