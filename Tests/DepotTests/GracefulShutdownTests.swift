import Depot
import Foundation
import Postgres
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM to a node while producers post: it stops accepting, answers every request it has
/// read (a committed message gets its 202), closes idle connections, and exits 0.
@Suite("Graceful shutdown of a node's HTTP ingress")
struct GracefulShutdownTests {
    @Test("SIGTERM while 50 clients post: every stored message got its 202, every 202 was stored, no reset after a whole request, exit 0")
    func sigtermWhileProducing() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let node = try await cluster.startHTTPNodeProcess("node-a")
        let port = node.port
        let outcomes = Task {
            try await onThreads(50) { client in Producer.run(port: port, client: client, until: .now + .seconds(30)) }
        }
        // Let them get going, then ask the node to stop.
        #expect(try await eventually(timeout: .seconds(20)) { try await cluster.integer("SELECT count(*) FROM depot.messages") >= 500 })
        node.child.signal(SIGTERM)
        let results = try await outcomes.value
        let status = await node.child.wait()
        #expect(status == 0, "node exited \(status): \(node.child.stderr.suffix(1500))")

        let accepted = results.flatMap(\.accepted)
        let stored = Set(try await cluster.rows("SELECT id FROM depot.messages").map { try $0.decode(at: 0, as: UUID.self).uuidString.lowercased() })
        #expect(accepted.count >= 500)
        #expect(Set(accepted).count == accepted.count, "an id answered twice")
        #expect(Set(accepted) == stored, "202 but not stored: \(Set(accepted).subtracting(stored).count); stored without a 202: \(stored.subtracting(accepted).count)")
        let resets = results.reduce(0) { $0 + $1.cutOff }
        #expect(resets == 0, "\(resets) requests sent whole got no answer")
        #expect(results.allSatisfy { $0.otherStatuses.isEmpty }, "statuses other than 202: \(results.flatMap(\.otherStatuses))")
        #expect(results.contains { $0.toldToClose }, "no answer said Connection: close")
        node.child.cleanUp()
    }
}

/// One producer on blocking sockets: posts one message after another on a keep-alive connection,
/// reconnects when told to close, and stops when the node no longer takes connections.
private struct Producer: Sendable {
    var accepted: [String] = []
    /// Requests sent whole that got no answer (the connection closed or reset first).
    var cutOff = 0
    var otherStatuses: [Int] = []
    var toldToClose = false

    static func run(port: Int, client: Int, until deadline: ContinuousClock.Instant) -> Producer {
        var outcome = Producer()
        var sent = 0
        while ContinuousClock.now < deadline {
            guard let connection = try? RawConnection(port: port, timeout: .seconds(15)) else { return outcome }
            defer { close(connection.descriptor) }
            while ContinuousClock.now < deadline {
                sent += 1
                let body = "client \(client) message \(sent)"
                let request = "POST /stores/orders/messages HTTP/1.1\r\nHost: depot\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
                guard connection.send(Array(request.utf8)) else { break }  // never sent whole: no promise owed
                guard let response = connection.readResponseWithHeaders() else {
                    outcome.cutOff += 1
                    break
                }
                if response.status == 202, let id = Self.id(in: response.body) {
                    outcome.accepted.append(id)
                } else {
                    outcome.otherStatuses.append(response.status)
                }
                if response.headers["connection"]?.lowercased() == "close" {
                    outcome.toldToClose = true
                    break
                }
            }
        }
        return outcome
    }

    static func id(in body: String) -> String? {
        guard let range = body.range(of: "\"id\":\"") else { return nil }
        return String(body[range.upperBound...].prefix { $0 != "\"" })
    }
}
