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
        try await cluster.addStore("orders")
        try await cluster.addEndpoint("backend", url: "http://127.0.0.1:\(port)/in?token=s3cr3t-value&region=eu%2Dwest#frag",
                                      timeoutMilliseconds: 2000)
        try await cluster.addProcessor("forwarder", .forwarding, from: "orders") {
            $0.targetEndpoint = "backend"
            $0.intervalMilliseconds = 0
            $0.retryIntervalMilliseconds = 50
            $0.maxDeliveryAttempts = 2
            $0.maxDeliveryDrop = false
        }
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
