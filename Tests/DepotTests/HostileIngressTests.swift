import Depot
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Requests from callers who do not know the token or a store's name must cost a real
/// `depot node --http` bounded memory and never lock others out; measured from /proc.
@Suite("Hostile ingress: bounded memory and no lockout")
struct HostileIngressTests {
    static func request(_ method: String, _ path: String, headers: [String] = [], body: [UInt8] = []) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: test\r\n"
        for header in headers { head += header + "\r\n" }
        head += "Content-Length: \(body.count)\r\n\r\n"
        return Array(head.utf8) + body
    }

    @Test("100,000 POSTs to distinct unknown store names, each a 404, grow the node's memory by under 50 MiB")
    func unknownStoreNamesCostNothing() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let node = try await cluster.startHTTPNodeProcess("node-a")
        defer { node.kill() }
        let padding = String(repeating: "x", count: 1000)
        @Sendable func flood(_ connections: Int, _ each: Int, _ tag: String) async throws -> [Int: Int] {
            let counts = try await onThreads(connections) { thread -> [Int: Int] in
                let connection = try RawConnection(port: node.port)
                var statuses: [Int: Int] = [:]
                for index in 0..<each {
                    connection.send(Self.request("POST", "/stores/\(tag)-\(thread)-\(index)-\(padding)/messages", body: Array("x".utf8)))
                    statuses[connection.readResponse()?.status ?? 0, default: 0] += 1
                }
                return statuses
            }
            return counts.reduce(into: [:]) { total, part in total.merge(part, uniquingKeysWith: +) }
        }
        #expect(try await flood(4, 500, "warm") == [404: 2000])
        let before = node.memory
        let statuses = try await flood(4, 25_000, "unknown")
        let after = node.memory
        #expect(statuses == [404: 100_000], "\(statuses)")
        #expect(after.resident - before.resident < 50 << 20, "before: \(before); after: \(after)")
        print("unknown store names: before \(before), after \(after)")
    }

    @Test("16 concurrent 10 MiB batches of 5 million tiny items get 413; the node's peak stays under 500 MiB and comes back down")
    func hugeBatchesAreRefusedWhileParsing() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let node = try await cluster.startHTTPNodeProcess("node-a")
        defer { node.kill() }
        let items = (10 << 20 - 3) / 2
        let body = Array("[".utf8) + Array(repeating: Array("0,".utf8), count: items).flatMap { $0 } + Array("0]".utf8)
        #expect(body.count <= 10 << 20)
        let request = Self.request("POST", "/stores/orders/messages/batch", headers: ["Content-Type: application/json"], body: body)
        let before = node.memory
        let statuses = try await onThreads(16) { _ in
            let connection = try RawConnection(port: node.port, timeout: .seconds(60))
            connection.send(request)
            return connection.readResponse()?.status ?? 0
        }
        let peak = node.memory
        #expect(statuses == Array(repeating: 413, count: 16), "\(statuses)")
        #expect(peak.peak - before.resident < 500 << 20, "before: \(before); after: \(peak)")
        let down = try await eventually(timeout: .seconds(10)) { node.memory.resident - before.resident < 100 << 20 }
        #expect(down, "before: \(before); at the peak: \(peak); later: \(node.memory)")
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 0)
        print("16 huge batches: before \(before), peak \(peak), later \(node.memory)")
    }

    @Test("with DEPOT_HTTP_TOKEN set, 100 unauthenticated 10 MiB POSTs get 401 after the head, before their bodies, for under 50 MiB")
    func tokenIsCheckedBeforeTheBody() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let node = try await cluster.startHTTPNodeProcess("node-a", environment: ["DEPOT_HTTP_TOKEN": "s3cret"])
        defer { node.kill() }
        let body = [UInt8](repeating: UInt8(ascii: "a"), count: 10 << 20)
        let head = Array("POST /stores/orders/messages HTTP/1.1\r\nHost: test\r\nContent-Length: \(body.count)\r\n\r\n".utf8)
        let before = node.memory
        let answers = try await onThreads(100) { _ -> String in
            let connection = try RawConnection(port: node.port, timeout: .seconds(5))
            connection.send(head)
            // Answered from the head alone: the body has not been sent yet.
            let answer = connection.readResponse()
            connection.send(body)
            return answer.map { "\($0.status)" } ?? "no answer to the head"
        }
        let after = node.memory
        #expect(answers == Array(repeating: "401", count: 100), "\(Set(answers))")
        #expect(after.peak - before.resident < 50 << 20, "before: \(before); after: \(after)")
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 0)
        print("100 unauthenticated bodies: before \(before), after \(after)")
    }

    @Test("1,024 silent connections do not lock callers out: /healthz answers 200, and a silent connection closes after the 10 s request timeout")
    func silentConnectionsDoNotLockOut() async throws {
        let cluster = try await Cluster.fresh()
        let node = try await cluster.startHTTPNodeProcess("node-a")
        defer { node.kill() }
        let opened = ContinuousClock.now
        let silent = try await onThreads(1) { _ in try (0..<1024).map { _ in try RawConnection(port: node.port, timeout: .seconds(30)) } }[0]
        let answers = try await onThreads(3) { _ -> Int in
            let connection = try RawConnection(port: node.port, timeout: .seconds(5))
            connection.send(Self.request("GET", "/healthz"))
            return connection.readResponse()?.status ?? 0
        }
        #expect(answers == [200, 200, 200])
        let closed = try await onThreads(1) { _ in silent[1000].awaitClose() }[0]
        let waited = ContinuousClock.now - opened
        #expect(closed && waited < .seconds(20), "the silent connection closed: \(closed), after \(waited)")
        print("silent connection closed after \(waited)")
    }
}
