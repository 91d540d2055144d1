import Depot
import DepotHTTP
import Foundation
import Testing
import TestSupport

/// What reaches a back end: the endpoint row's headers, Host and the connection's own fields are
/// the operator's and Depot's, never a producer's.
@Suite("Endpoint headers win")
struct EndpointHeaderTests {
    @Test("a message posted with Depot-Header-Authorization, -Host, -X-Api-Key and -Connection reaches the back end with the endpoint's values and its own Host")
    func endpointHeadersWin() async throws {
        let cluster = try await Cluster.fresh()
        let backEnd = try RecordingBackEnd()
        defer { backEnd.stop() }
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('orders');
            INSERT INTO depot.endpoints (name, url, headers)
            VALUES ('backend', 'http://127.0.0.1:\(backEnd.port)/in', '{"Authorization": "Bearer operator", "X-Api-Key": "operator-key"}');
            INSERT INTO depot.processors (name, kind, store, target_endpoint, interval_ms) VALUES ('forwarder', 'forwarding', 'orders', 'backend', 0);
            """)
        let ingress = try cluster.startIngress()
        defer { ingress.server.stop() }
        let posted = try await ingress.send("POST", "/stores/orders/messages", headers: [
            "Depot-Header-Authorization": "Bearer FORGED", "Depot-Header-authorization": "Bearer FORGED-2",
            "Depot-Header-X-API-KEY": "forged-key", "Depot-Header-Host": "evil.example",
            "Depot-Header-Connection": "close", "Depot-Header-Keep-Alive": "timeout=1", "Depot-Header-Upgrade": "h2c",
            "Depot-Header-Depot-Message-Id": "forged", "Depot-Header-X-Trace": "trace-7",
        ], body: Data("hello".utf8))
        #expect(posted.status == 202)
        let node = cluster.startNode("node-a")
        let delivered = try await eventually { !backEnd.received.isEmpty }
        try await node.stop()
        let headers = try #require(backEnd.received.first?.headers, "nothing reached the back end")
        #expect(delivered)
        #expect(headers.values("Authorization") == ["Bearer operator"])
        #expect(headers.values("X-Api-Key") == ["operator-key"])
        #expect(headers.values("Host") == ["127.0.0.1:\(backEnd.port)"])
        #expect(headers.values("Upgrade").isEmpty && headers.values("Keep-Alive").isEmpty)
        #expect(!headers.values("Connection").contains("close"))
        #expect(headers.values("Depot-Message-Id").count == 1 && headers["Depot-Message-Id"] != "forged")
        #expect(headers.values("X-Trace") == ["trace-7"], "a header the endpoint does not set still passes")
    }

    @Test("an endpoint with message_headers = '{X-Trace}' gets X-Trace from the message and no other message header")
    func endpointChoosesMessageHeaders() async throws {
        let cluster = try await Cluster.fresh()
        let backEnd = try RecordingBackEnd()
        defer { backEnd.stop() }
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('orders');
            INSERT INTO depot.endpoints (name, url, message_headers) VALUES ('backend', 'http://127.0.0.1:\(backEnd.port)/in', '{x-trace}');
            INSERT INTO depot.processors (name, kind, store, target_endpoint, interval_ms) VALUES ('forwarder', 'forwarding', 'orders', 'backend', 0);
            """)
        _ = try await PostgresStore(name: "orders", pool: cluster.pool).store([
            OutgoingMessage(payload: Data("x".utf8), headers: ["X-Trace": "t-1", "Authorization": "Bearer producer", "X-Other": "o"]),
        ])
        let node = cluster.startNode("node-a")
        let delivered = try await eventually { !backEnd.received.isEmpty }
        try await node.stop()
        #expect(delivered)
        let headers = try #require(backEnd.received.first?.headers)
        #expect(headers.values("X-Trace") == ["t-1"])
        #expect(headers.values("Authorization").isEmpty && headers.values("X-Other").isEmpty, "\(headers)")
    }
}
