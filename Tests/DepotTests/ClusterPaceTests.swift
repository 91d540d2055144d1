import Depot
import DepotHTTP
import Foundation
import Postgres
import Testing
import TestSupport

/// A processor's rate_limit holds for the whole cluster: three node processes with four members
/// each deliver at the limit together, never faster than the bucket allows, and follow an UPDATE.
@Suite("One pace for the cluster")
struct ClusterPaceTests {
    @Test("50 msg/s over 3 nodes × 4 members: within ±10%, no second above limit + bucket + jitter; raised to 100 by UPDATE: applied within 2 s")
    func clusterPace() async throws {
        let cluster = try await Cluster.fresh()
        let arrivals = Arrivals()
        let backEnd = HTTPServer(.init()) { _ in
            arrivals.add()
            return HTTPResponse(status: 200)
        }
        try backEnd.start()
        defer { backEnd.stop() }
        try await cluster.addStore("orders")
        try await cluster.addEndpoint("backend", url: "http://127.0.0.1:\(backEnd.port)/in")
        try await cluster.addProcessor("paced", .forwarding, from: "orders") {
            $0.targetEndpoint = "backend"
            $0.intervalMilliseconds = 0
            $0.batchSize = 10
            $0.memberCount = 4
            $0.rateLimit = 50
        }
        _ = try await cluster.storeTexts("orders", count: 5_000)
        let nodes = try (1...3).map { try cluster.startNodeProcess("node-\($0)") }
        defer { nodes.forEach { $0.signal(SIGTERM) } }
        #expect(try await eventually(timeout: .seconds(20)) { arrivals.count > 0 }, "nothing delivered: \(nodes[0].stderr)")

        // 16 s at 50/s, judged after the first 2 s (nodes starting at different moments).
        let start = ContinuousClock.now
        try await Task.sleep(for: .seconds(18))
        let steady = arrivals.between(start + .seconds(2), start + .seconds(18))
        let rate = Double(steady.count) / 16
        #expect(abs(rate - 50) <= 5, "delivered \(rate) msg/s against a limit of 50")
        // The bucket bounds what is granted in any second to 50 + 5; arrivals move with each
        // delivery's latency, so a second of arrivals may hold grants from up to 100 ms around it.
        let busiest = Arrivals.busiestSecond(steady)
        #expect(busiest <= 60, "a second held \(busiest) deliveries; the limit of 50, a bucket of 5 and 100 ms of delivery jitter allow 60")

        try await cluster.sql("UPDATE depot.processors SET rate_limit = 100 WHERE name = 'paced'")
        let raised = ContinuousClock.now
        try await Task.sleep(for: .seconds(6))
        let after = arrivals.between(raised + .seconds(2), raised + .seconds(6))
        let raisedRate = Double(after.count) / 4
        #expect(abs(raisedRate - 100) <= 10, "after the UPDATE to 100: \(raisedRate) msg/s from 2 s on")
        for node in nodes {
            node.signal(SIGTERM)
            #expect(await node.wait() == 0)
        }
    }
}

/// When each delivery arrived.
private final class Arrivals: @unchecked Sendable {
    private let lock = NSLock()
    private var times: [ContinuousClock.Instant] = []
    func add() { lock.withLock { times.append(.now) } }
    var count: Int { lock.withLock { times.count } }
    func between(_ from: ContinuousClock.Instant, _ to: ContinuousClock.Instant) -> [ContinuousClock.Instant] {
        lock.withLock { times.filter { $0 >= from && $0 < to } }
    }

    /// Most arrivals in any one-second window starting at an arrival.
    static func busiestSecond(_ times: [ContinuousClock.Instant]) -> Int {
        let sorted = times.sorted()
        var most = 0
        var end = 0
        for (start, instant) in sorted.enumerated() {
            while end < sorted.count, sorted[end] < instant + .seconds(1) { end += 1 }
            most = max(most, end - start)
        }
        return most
    }
}
