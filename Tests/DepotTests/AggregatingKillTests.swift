import Depot
import DepotHTTP
import Foundation
import Postgres
import Testing
import TestSupport

/// The aggregating processor across `depot node` processes, one killed with SIGKILL in the middle.
@Suite("Aggregating processor through a kill -9")
struct AggregatingKillTests {
    @Test("kill -9 of a node while groups release: every group released once, with every member once")
    func killDuringRelease() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('parts'), ('out');
            INSERT INTO depot.processors (name, kind, store, target_store, release_size, correlation_header, interval_ms, batch_size, member_count)
            VALUES ('aggregator', 'aggregating', 'parts', 'out', 100, 'Order', 0, 20, 2);
            """)
        let rows = try await Self.killNodeWhileReleasing(cluster, released: "SELECT count(*) FROM depot.messages WHERE store = 'out'")
        let releases = try rows.map { try $0.decode((Data, String).self) }
        #expect(releases.count == Self.groups, "releases: \(releases.count), expected \(Self.groups)")
        try Self.expectEveryMemberOnce(releases)
    }

    @Test("kill -9 of a node while groups release to an endpoint: each group released once (one aggregate id), reaching the back end at least once")
    func killDuringReleaseToEndpoint() async throws {
        let cluster = try await Cluster.fresh()
        let backEnd = try RecordingBackEnd()
        defer { backEnd.stop() }
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('parts');
            INSERT INTO depot.endpoints (name, url) VALUES ('back-end', '\(backEnd.url)');
            INSERT INTO depot.processors (name, kind, store, target_endpoint, release_size, correlation_header, interval_ms, batch_size, member_count)
            VALUES ('aggregator', 'aggregating', 'parts', 'back-end', 100, 'Order', 0, 20, 2);
            """)
        // Released = waiting in the hand-off store, being delivered, or acked after delivery.
        _ = try await Self.killNodeWhileReleasing(cluster, released: """
            SELECT count(*) FROM depot.messages WHERE store = 'aggregator/handoff'
            """, delivered: { Set(backEnd.received.compactMap { $0.headers["Depot-Group"] }).count })
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'aggregator/handoff'") == 0)
        // At least once toward the endpoint: a delivery the dead node made but did not ack is
        // made again, of the same aggregate (same id, same members).
        var byID: [String: (Data, String)] = [:]
        for request in backEnd.received {
            let id = try #require(request.headers["Depot-Message-Id"]), group = try #require(request.headers["Depot-Group"])
            if let earlier = byID[id] { #expect(earlier.0 == request.body && earlier.1 == group, "aggregate \(id) changed between deliveries") }
            byID[id] = (request.body, group)
        }
        #expect(byID.count == Self.groups, "aggregates: \(byID.count), expected \(Self.groups)")
        print("aggregating kill to an endpoint: \(backEnd.received.count) requests for \(byID.count) aggregates")
        try Self.expectEveryMemberOnce(Array(byID.values))
    }

    static let groups = 30, size = 100

    /// Releases (payload, group) hold every member once, each in its own group, `size` per group.
    static func expectEveryMemberOnce(_ releases: [(Data, String)]) throws {
        var seen: [Int] = []
        var releasedGroups: [String] = []
        for (payload, group) in releases {
            let members = try #require(try JSONSerialization.jsonObject(with: payload) as? [[String: Int]])
            #expect(members.count == size, "group \(group) released with \(members.count) members")
            #expect(members.allSatisfy { "g\($0["g"] ?? -1)" == group }, "group \(group) holds another group's member")
            seen += members.compactMap { $0["n"] }
            releasedGroups.append(group)
        }
        #expect(seen.sorted() == Array(0..<groups * size), "members released: \(seen.count), distinct \(Set(seen).count)")
        #expect(Set(releasedGroups).count == groups)
    }

    /// Trickles 30 groups of 100 into `parts` through two node processes, kills one with SIGKILL
    /// while it holds a batch once a group is out, and waits until every group is released
    /// (`released` counts them in the target store; `delivered`, when given, counts the groups
    /// the back end got, and the releases then must have left the hand-off store). Stops the
    /// other node; returns the target store's rows (payload, group).
    static func killNodeWhileReleasing(_ cluster: Cluster, released: String, delivered: (@Sendable () -> Int)? = nil) async throws -> Rows {
        // 30 groups of 100 in three waves of 10 groups, each wave interleaved so that every batch
        // feeds many groups; the producer stores the next 50 only once fewer than 100 wait, so
        // the nodes are busy releasing all the while.
        let messages = (0..<groups * size).map { index in
            let group = (index / 1000) * 10 + index % 10
            return OutgoingMessage(payload: Data("{\"g\": \(group), \"n\": \(index)}".utf8),
                                   headers: ["Order": "g\(group)"], contentType: "application/json")
        }
        let nodes = ["node-1": try cluster.startNodeProcess("node-1"), "node-2": try cluster.startNodeProcess("node-2")]
        defer { nodes.values.forEach { $0.signal(SIGKILL); $0.cleanUp() } }
        let producer = cluster.trickle(messages, into: "parts")

        // Kill node-1 while it holds a batch, once the first wave is out.
        #expect(try await eventually(timeout: .seconds(60)) {
            try await cluster.integer(released) + (delivered?() ?? 0) >= 1
        })
        let held = try await cluster.killWhileHoldingLease(nodes["node-1"]!, node: "node-1")
        #expect(await nodes["node-1"]!.wait() == 128 + SIGKILL)
        // What the dead node held: either its last statement, already sent, still commits on the
        // server (a release without its node), or it rolls back and the lease runs out.
        let orphaned = try await cluster.integer("SELECT count(*) FROM depot.messages WHERE locked_by LIKE 'node-1/%'")
        let releasedAtKill = try await cluster.integer(released) + (delivered?() ?? 0)
        let killedAt = ContinuousClock.now
        try await producer.value

        let done = try await eventually(timeout: .seconds(120)) {
            let out = try await cluster.integer(released)
            let left = try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'parts'")
            if let delivered { return delivered() >= groups && out == 0 && left == 0 }
            return out >= groups && left == 0
        }
        #expect(done)
        print("aggregating kill: node-1 killed \(held ? "holding a batch" : "(no batch seen)") with \(releasedAtKill) of \(groups) groups released; "
              + "\(orphaned) messages leased to it at its death; all released \(ContinuousClock.now - killedAt) after the kill")

        #expect(try await cluster.integer("SELECT count(*) FROM depot.message_groups") == 0)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.dead_letters") == 0)
        nodes["node-2"]?.signal(SIGTERM)
        #expect(await nodes["node-2"]!.wait() == 0)
        return try await cluster.rows("SELECT payload, headers ->> 'Depot-Group' FROM depot.messages WHERE store = 'out'")
    }
}
