import Depot
import Foundation
import Postgres
import Testing
import TestSupport

/// The resequencing processor across `depot node` processes, one killed with SIGKILL in the middle.
@Suite("Resequencing processor through a kill -9")
struct ResequencingKillTests {
    @Test("kill -9 of a node while groups are let out: every number delivered exactly once, each group in order")
    func killDuringRelease() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('parts'), ('out');
            INSERT INTO depot.processors (name, kind, store, target_store, correlation_header, interval_ms, batch_size, member_count)
            VALUES ('resequencer', 'resequencing', 'parts', 'out', 'Stream', 0, 20, 2);
            """)
        // 4 streams of 750 numbers, shuffled within windows of 50 numbers of every stream, so that
        // most messages wait a little for a predecessor and releases go on all the while; the
        // producer stores the next 50 only once fewer than 100 wait in the store.
        let streams = 4, size = 750, window = 50
        var random = SeededRandom(seed: 9)
        let messages = stride(from: 1, through: size, by: window).flatMap { first in
            (0..<streams).flatMap { stream in
                (first..<first + window).map { number in
                    OutgoingMessage(payload: Data("\(stream):\(number)".utf8),
                                    headers: ["Stream": "s\(stream)", "Depot-Sequence-Number": String(number)], contentType: "text/plain")
                }
            }.shuffled(using: &random)
        }
        let nodes = ["node-1": try cluster.startNodeProcess("node-1"), "node-2": try cluster.startNodeProcess("node-2")]
        defer { nodes.values.forEach { $0.signal(SIGKILL); $0.cleanUp() } }
        let producer = cluster.trickle(messages, into: "parts")

        // Kill node-1 while it holds a batch, once a fair part is out.
        #expect(try await eventually(timeout: .seconds(60)) {
            try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'out'") >= 300
        })
        let heldBatch = try await cluster.killWhileHoldingLease(nodes["node-1"]!, node: "node-1")
        #expect(await nodes["node-1"]!.wait() == 128 + SIGKILL)
        let orphaned = try await cluster.integer("SELECT count(*) FROM depot.messages WHERE locked_by LIKE 'node-1/%'")
        let outAtKill = try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'out'")
        let heldAtKill = try await cluster.integer("SELECT coalesce(sum(size), 0)::bigint FROM depot.message_groups")
        let killedAt = ContinuousClock.now
        try await producer.value

        let done = try await eventually(timeout: .seconds(120)) {
            let out = try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'out'")
            let left = try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'parts'")
            return out >= streams * size && left == 0
        }
        #expect(done)
        print("resequencing kill: node-1 killed \(heldBatch ? "holding a batch" : "(no batch seen)") with \(outAtKill) of \(streams * size) out and \(heldAtKill) held; "
              + "\(orphaned) messages leased to it at its death; all out \(ContinuousClock.now - killedAt) after the kill")

        for stream in 0..<streams {
            let numbers = try await cluster.rows("""
                SELECT (headers ->> 'Depot-Sequence-Number')::int FROM depot.messages
                WHERE store = 'out' AND group_key = 's\(stream)' ORDER BY seq
                """).map { try $0.decode(at: 0, as: Int.self) }
            #expect(numbers == Array(1...size), "stream s\(stream): \(numbers.count) out, \(Set(numbers).count) distinct, in order: \(numbers == numbers.sorted())")
        }
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'out'") == streams * size)
        #expect(try await cluster.integer("SELECT coalesce(sum(size), 0)::bigint FROM depot.message_groups") == 0)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.dead_letters") == 0)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.sequence_gaps") == 0)
        nodes["node-2"]?.signal(SIGTERM)
        #expect(await nodes["node-2"]!.wait() == 0)
    }
}
