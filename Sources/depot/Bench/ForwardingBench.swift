import Foundation
import Postgres

/// Scenario 4: a node process forwards a full store over HTTP to the project's own echo back
/// end (another process), with 1 and 8 members; each member claims 100 and sends them one by one.
enum ForwardingBench {
    static let store = "bench-forward"

    static func run(_ context: BenchContext) async throws -> [BenchFigure] {
        let size = context.quick ? 2_000 : 20_000
        let (echo, port) = try await context.startEcho()
        defer { Task { await echo.stop() } }
        var figures: [BenchFigure] = []
        for members in [1, 8] {
            try await context.reset(stores: [store])
            try await context.pool.query("""
                INSERT INTO depot.endpoints (name, url, timeout_ms) VALUES ('bench-echo', \("http://127.0.0.1:\(port)/"), 10000)
                """)
            context.progress("forwarding: filling \(store) with \(size) messages")
            try await context.fill(store, count: size)
            try await context.pool.query("""
                INSERT INTO depot.processors (name, kind, store, target_endpoint, interval_ms, batch_size, member_count, is_active)
                VALUES ('bench-forward', 'forwarding', \(store), 'bench-echo', 0, 100, \(members), false)
                """)
            let node = try await context.startNode("bench-forward-\(members)")
            context.progress("forwarding: \(size) messages to the echo back end, \(members) member(s)")
            let started = ContinuousClock.now
            try await context.pool.query("SELECT depot.activate_processor('bench-forward')")
            let seconds: Double
            do {
                seconds = try await context.drained(store, from: started, timeout: .seconds(600))
            } catch {
                await node.stop()
                throw error
            }
            try await context.pool.query("DELETE FROM depot.processors WHERE name = 'bench-forward'")
            await node.stop()
            let dead = try await context.pool.query("SELECT count(*) FROM depot.dead_letters WHERE store = \(store)").first?.decode(at: 0, as: Int.self) ?? 0
            guard dead == 0 else { throw BenchFailure("forwarding dead-lettered \(dead) messages; the echo back end should take every one") }
            figures.append(.rate("forwarding", "HTTP to echo back end, \(members) member\(members == 1 ? "" : "s")", Double(size) / seconds,
                                 against: nil, references: context.references.values, minimumRate: members == 8 ? 8_000 : nil))
        }
        await echo.stop()
        return figures
    }
}
