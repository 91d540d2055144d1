import Depot
import DepotHTTP
import Foundation
import Postgres
import Testing
import TestSupport

/// MI's forwarding order: an in_order processor delivers its store's head, one message at a time
/// across every node, retrying it until it is done, and another node takes over when the
/// delivering node is killed.
@Suite("In order through retries, across nodes")
struct InOrderTests {
    @Test("600 messages, every 10th failing twice, two node processes, the delivering one killed -9 mid-run: received in order, none lost")
    func inOrderAcrossNodes() async throws {
        let cluster = try await Cluster.fresh()
        let backEnd = OrderedBackEnd()
        let server = HTTPServer(.init()) { request in backEnd.answer(request) }
        try server.start()
        defer { server.stop() }
        try await cluster.addStore("orders")
        try await cluster.addEndpoint("backend", url: "http://127.0.0.1:\(server.port)/in")
        try await cluster.addProcessor("ordered", .forwarding, from: "orders") {
            $0.targetEndpoint = "backend"
            $0.intervalMilliseconds = 0
            $0.batchSize = 50
            $0.memberCount = 3
            $0.retryIntervalMilliseconds = 50
            $0.maxDeliveryAttempts = 0
            $0.inOrder = true
        }
        let count = 600
        _ = try await cluster.storeTexts("orders", count: count, prefix: "")
        let nodes = ["node-1": try cluster.startNodeProcess("node-1"), "node-2": try cluster.startNodeProcess("node-2")]
        defer { nodes.values.forEach { $0.signal(SIGKILL) } }

        // Kill whichever node holds the head once a quarter is through.
        #expect(try await eventually(timeout: .seconds(60)) { backEnd.delivered.count >= count / 4 })
        var killed: String?
        _ = try await eventually(timeout: .seconds(10), every: .milliseconds(1)) {
            guard let holder = try await cluster.rows("SELECT locked_by FROM depot.messages WHERE locked_until > now() LIMIT 1")
                .first?.decode(at: 0, as: String.self) else { return false }
            killed = String(holder.prefix { $0 != "/" })
            nodes[killed!]?.signal(SIGKILL)
            return true
        }
        #expect(killed != nil, "no node held the head")
        #expect(backEnd.maximumInFlight == 1, "more than one delivery in flight at once")

        let done = try await eventually(timeout: .seconds(120)) { Set(backEnd.delivered).count == count }
        #expect(done, "delivered \(Set(backEnd.delivered).count) of \(count)")
        // In order: the successful deliveries, a repeat of the message in flight at the kill
        // folded, are exactly 0, 1, 2, …
        var folded: [Int] = []
        for index in backEnd.delivered where folded.last != index { folded.append(index) }
        #expect(folded == Array(0..<count), "first out of order at \(zip(folded, 0...).first { $0 != $1 }.map { "\($0)" } ?? "-")")
        #expect(backEnd.delivered.count - count <= 1, "\(backEnd.delivered.count - count) repeats; only the message in flight at the kill may come twice")
        #expect(backEnd.maximumInFlight == 1)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 0)
        for (name, node) in nodes where name != killed {
            node.signal(SIGTERM)
            #expect(await node.wait() == 0)
        }
    }
}

/// A back end that fails the first two attempts of every tenth message and records the order of
/// the successful ones, and how many requests it was answering at once at most.
private final class OrderedBackEnd: @unchecked Sendable {
    private let lock = NSLock()
    private var attempts: [Int: Int] = [:]
    private var successes: [Int] = []
    private var inFlight = 0
    private var mostInFlight = 0

    func answer(_ request: HTTPRequest) -> HTTPResponse {
        guard let index = Int(String(decoding: request.body, as: UTF8.self)) else { return HTTPResponse(status: 400) }
        lock.withLock {
            inFlight += 1
            mostInFlight = max(mostInFlight, inFlight)
        }
        // A delivery takes a moment, so that two at once would overlap.
        usleep(1000)
        return lock.withLock {
            inFlight -= 1
            attempts[index, default: 0] += 1
            if index % 10 == 9 && attempts[index]! <= 2 { return HTTPResponse(status: 503) }
            successes.append(index)
            return HTTPResponse(status: 200)
        }
    }

    var delivered: [Int] { lock.withLock { successes } }
    var maximumInFlight: Int { lock.withLock { mostInFlight } }
}
