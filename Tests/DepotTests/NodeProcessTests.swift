import Depot
import DepotHTTP
import Foundation
import Postgres
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Real `depot node` processes: killed with `kill -9` mid-delivery, and stopped with SIGTERM.
@Suite("Node processes")
struct NodeProcessTests {
    @Test("kill -9 of a node mid-delivery with 1,000 messages queued: the other node delivers all 1,000 ids")
    func killNineLosesNothing() async throws {
        let cluster = try await Cluster.fresh()
        let (echo, url) = try Cluster.echo(.init(delayMilliseconds: 2))
        defer { echo.stop() }
        try await NodeBehaviourTests.forwarding(cluster, url: url) { $0.intervalMilliseconds = 0; $0.batchSize = 10; $0.memberCount = 2 }
        let ids = try await cluster.storeTexts("orders", count: 1000)
        let nodeA = try cluster.startNodeProcess("node-a")
        defer { nodeA.signal(SIGKILL); nodeA.cleanUp() }
        let started = try await eventually(timeout: .seconds(20)) { echo.snapshot().requests >= 100 }
        #expect(started, "node-a never started delivering: \(nodeA.stderr)")
        nodeA.signal(SIGKILL)
        #expect(await nodeA.wait() == 128 + SIGKILL)
        let heldByTheDead = try await cluster.integer("SELECT count(*) FROM depot.messages WHERE locked_by LIKE 'node-a/%' AND locked_until > now()")
        let nodeB = try cluster.startNodeProcess("node-b")
        defer { nodeB.signal(SIGKILL); nodeB.cleanUp() }
        let all = try await eventually(timeout: .seconds(60)) { echo.snapshot().distinct == 1000 }
        #expect(all, "distinct ids delivered: \(echo.snapshot().distinct); node-b: \(nodeB.stderr.suffix(500))")
        let delivered = Set(echo.snapshot().byMessage.keys)
        #expect(delivered == Set(ids.map { $0.uuidString.lowercased() }))
        let empty = try await eventually(timeout: .seconds(10)) { try await cluster.integer("SELECT count(*) FROM depot.messages") == 0 }
        #expect(empty)
        // The point of the test: node-a died holding leases, and they were delivered anyway.
        #expect(heldByTheDead > 0 || echo.snapshot().requests > 1000, "node-a held no leases when killed; the test proved nothing")
        nodeB.signal(SIGTERM)
        #expect(await nodeB.wait() == 0)
    }

    @Test("SIGTERM: the node finishes or releases what it holds, deregisters and exits 0")
    func sigtermStopsCleanly() async throws {
        let cluster = try await Cluster.fresh()
        let (echo, url) = try Cluster.echo(.init(delayMilliseconds: 500))
        defer { echo.stop() }
        try await NodeBehaviourTests.forwarding(cluster, url: url) { $0.intervalMilliseconds = 0; $0.batchSize = 5 }
        let node = try cluster.startNodeProcess("node-a")
        defer { node.signal(SIGKILL); node.cleanUp() }
        let registered = try await eventually { try await cluster.integer("SELECT count(*) FROM depot.nodes WHERE name = 'node-a'") == 1 }
        #expect(registered, "\(node.stderr)")
        _ = try await cluster.storeTexts("orders", count: 20)
        let busy = try await eventually { echo.snapshot().requests >= 1 }
        #expect(busy)
        node.signal(SIGTERM)
        #expect(await node.wait() == 0, "\(node.stderr)")
        #expect(try await cluster.integer("SELECT count(*) FROM depot.nodes") == 0)
        // Nothing is left leased: what was not delivered is back in line, ready for another node.
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE locked_until > now()") == 0)
        let remaining = try await cluster.integer("SELECT count(*) FROM depot.messages")
        #expect(remaining + echo.snapshot().succeeded == 20)
        #expect(remaining > 0, "the node should have stopped before delivering everything")
        // The untried rest of its batch went back without an attempt counted.
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE attempts > 0") == 0)
    }

    @Test("depot node and depot echo-server refuse bad arguments with usage status 64")
    func badArguments() async throws {
        let noName = try await runProcess(depotExecutable, ["node"])
        #expect(noName.status == 64)
        #expect(noName.stderr.contains("--name is required"))
        let shortLease = try await runProcess(depotExecutable, ["node", "--name", "a", "--lease", "10ms"])
        #expect(shortLease.status == 64)
        #expect(shortLease.stderr.contains("lease"))
        let badRate = try await runProcess(depotExecutable, ["echo-server", "--port", "0", "--fail-rate", "2"])
        #expect(badRate.status == 64)
        #expect(badRate.stderr.contains("--fail-rate"))
        let unreachable = try await runProcess(depotExecutable, ["node", "--name", "a"],
                                               environment: ["DEPOT_DATABASE_URL": "postgres://depot@127.0.0.1:1/depot?connect_timeout=2"])
        #expect(unreachable.status == 69)
    }
}
