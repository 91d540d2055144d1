import Depot
import Foundation
import Testing
import TestSupport

/// A single-value request header sent twice is refused: a proxy in front may have read the other one.
@Suite("Repeated single-value headers")
struct RepeatedHeaderTests {
    @Test("Depot-Priority, Depot-Delay-Ms, Depot-Group-Key, Idempotency-Key and Content-Type sent twice get 400 naming the header; nothing is stored")
    func repeatedHeadersAreRefused() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let ingress = try cluster.startIngress()
        defer { ingress.server.stop() }
        let cases: [(String, String, String)] = [("Depot-Priority", "1", "x"), ("Depot-Delay-Ms", "0", "60000"), ("depot-group-key", "a", "b"),
                                                 ("Idempotency-Key", "k1", "k2"), ("Content-Type", "text/plain", "application/json")]
        for (name, first, second) in cases {
            let raw = "POST /stores/orders/messages HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\(name): \(first)\r\n\(name.uppercased()): \(second)\r\nContent-Length: 2\r\n\r\nhi"
            let answer = try await rawExchange(port: ingress.server.port, Array(raw.utf8))
            #expect(answer.hasPrefix("HTTP/1.1 400 "), "\(name): \(answer.prefix(120))")
            #expect(answer.lowercased().contains("\(name.lowercased()) was sent more than once"), "\(answer)")
        }
        let batch = "POST /stores/orders/messages/batch HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Type: application/x-ndjson\r\nContent-Length: 17\r\n\r\n[{\"payload\":\"x\"}]"
        #expect(try await rawExchange(port: ingress.server.port, Array(batch.utf8)).hasPrefix("HTTP/1.1 400 "))
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 0)
        let once = "POST /stores/orders/messages HTTP/1.1\r\nHost: t\r\nConnection: close\r\nDepot-Priority: 1\r\nContent-Length: 2\r\n\r\nhi"
        #expect(try await rawExchange(port: ingress.server.port, Array(once.utf8)).hasPrefix("HTTP/1.1 202 "))
    }
}
