import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Endpoint URLs carry secrets; failures that name the endpoint must not.
@Suite("Secrets in endpoint URLs")
struct SecretRedactionTests {
    @Test("a refused endpoint with ?token= and a fragment in its URL: last_error, deactivated_reason and the node's log show *** instead")
    func endpointSecretsAreRedacted() async throws {
        let cluster = try await Cluster.fresh()
        let port = try freePort()
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('orders');
            INSERT INTO depot.endpoints (name, url, timeout_ms)
            VALUES ('backend', 'http://127.0.0.1:\(port)/in?token=s3cr3t-value&region=eu%2Dwest#frag', 2000);
            INSERT INTO depot.processors (name, kind, store, target_endpoint, interval_ms, retry_interval_ms, max_delivery_attempts, max_delivery_drop)
            VALUES ('forwarder', 'forwarding', 'orders', 'backend', 0, 50, 2, false);
            """)
        _ = try await cluster.storeTexts("orders", count: 1)
        let node = try cluster.startNodeProcess("node-a")
        defer { node.signal(SIGKILL); node.cleanUp() }
        let deactivated = try await eventually(timeout: .seconds(30)) {
            try await cluster.integer("SELECT count(*) FROM depot.processors WHERE NOT is_active AND deactivated_reason IS NOT NULL") == 1
        }
        #expect(deactivated, "\(node.stderr)")
        let reason: String = try await cluster.rows("SELECT deactivated_reason FROM depot.processors").first!.decode(at: 0)
        let lastError: String = try await cluster.rows("SELECT coalesce(last_error, '') FROM depot.messages").first!.decode(at: 0)
        for text in [reason, lastError, node.stderr] {
            #expect(!text.contains("s3cr3t-value") && !text.contains("west") && !text.contains("frag"), "\(text)")
        }
        #expect(reason.contains("http://127.0.0.1:\(port)/in?token=***&region=***"), "\(reason)")
        #expect(reason.contains("Connection refused"), "\(reason)")
    }
}
