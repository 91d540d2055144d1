import Depot
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
        // 30 groups of 100 in three waves of 10 groups, each wave interleaved so that every batch
        // feeds many groups; the producer stores the next 50 only once fewer than 100 wait, so
        // the nodes are busy releasing all the while.
        let groups = 30, size = 100
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
            try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'out'") >= 1
        })
        let held = try await cluster.killWhileHoldingLease(nodes["node-1"]!, node: "node-1")
        #expect(await nodes["node-1"]!.wait() == 128 + SIGKILL)
        // What the dead node held: either its last statement, already sent, still commits on the
        // server (a release without its node), or it rolls back and the lease runs out.
        let orphaned = try await cluster.integer("SELECT count(*) FROM depot.messages WHERE locked_by LIKE 'node-1/%'")
        let releasedAtKill = try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'out'")
        let killedAt = ContinuousClock.now
        try await producer.value

        let done = try await eventually(timeout: .seconds(120)) {
            let out = try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'out'")
            let left = try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'parts'")
            return out >= groups && left == 0
        }
        #expect(done)
        print("aggregating kill: node-1 killed \(held ? "holding a batch" : "(no batch seen)") with \(releasedAtKill) of \(groups) groups released; "
              + "\(orphaned) messages leased to it at its death; all released \(ContinuousClock.now - killedAt) after the kill")

        let rows = try await cluster.rows("SELECT payload, headers ->> 'Depot-Group' FROM depot.messages WHERE store = 'out'")
        #expect(rows.count == groups, "releases: \(rows.count), expected \(groups)")
        var seen: [Int] = []
        var releasedGroups: [String] = []
        for row in rows {
            let (payload, group) = try row.decode((Data, String).self)
            let members = try #require(try JSONSerialization.jsonObject(with: payload) as? [[String: Int]])
            #expect(members.count == size, "group \(group) released with \(members.count) members")
            #expect(members.allSatisfy { "g\($0["g"] ?? -1)" == group }, "group \(group) holds another group's member")
            seen += members.compactMap { $0["n"] }
            releasedGroups.append(group)
        }
        #expect(seen.sorted() == Array(0..<groups * size), "members released: \(seen.count), distinct \(Set(seen).count)")
        #expect(Set(releasedGroups).count == groups)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.message_groups") == 0)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.dead_letters") == 0)
        nodes["node-2"]?.signal(SIGTERM)
        #expect(await nodes["node-2"]!.wait() == 0)
    }
}
