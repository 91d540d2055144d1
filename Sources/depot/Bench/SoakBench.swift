import Depot
import Foundation
import Postgres

/// Scenario 6: a steady 2,000 messages/s into a store that a node process drains, for 10 minutes
/// (30 s with `--quick`): delivered messages/s, table and index size, and node memory over time.
enum SoakBench {
    static let store = "bench-soak"
    static let rate = 2_000

    struct Sample: Sendable {
        var second: Int
        var delivered: Double
        var tableMiB: Double
        var nodeMiB: Double
    }

    static func run(_ context: BenchContext) async throws -> [BenchFigure] {
        let duration = context.seconds(full: 600, quick: 30)
        let interval = context.quick ? 5 : 60
        try await context.reset(stores: [store])
        try await context.pool.query("""
            INSERT INTO depot.processors (name, kind, store, handler, interval_ms, concurrency, member_count)
            VALUES ('bench-soak', 'sampling', \(store), 'drop', 0, 100, 2)
            """)
        let node = try await context.startNode("bench-soak")
        context.progress("soak: \(rate) msg/s for \(duration) s, a sample every \(interval) s")
        let produced = Counter()
        let producing = Task { try await produce(context, seconds: duration, counter: produced) }
        var samples: [Sample] = []
        var lastProduced = 0
        var lastDepth = 0
        let started = ContinuousClock.now
        do {
            for tick in 1...(duration / interval) {
                try await Task.sleep(until: started + .seconds(tick * interval))
                let (total, depth) = (produced.value, try await context.depth(store))
                let delivered = Double((total - lastProduced) - (depth - lastDepth)) / Double(interval)
                (lastProduced, lastDepth) = (total, depth)
                let bytes: Int = try await context.pool.query("SELECT pg_total_relation_size('depot.messages')").first?.decode(at: 0) ?? 0
                samples.append(Sample(second: tick * interval, delivered: delivered, tableMiB: Double(bytes) / 1_048_576, nodeMiB: node.residentMiB))
                context.progress("soak: \(tick * interval) s: \(Int(delivered)) msg/s delivered, depth \(depth), table+indexes \(String(format: "%.1f", Double(bytes) / 1_048_576)) MiB, node \(Int(node.residentMiB)) MiB")
            }
            try await producing.value
        } catch {
            producing.cancel()
            await node.stop()
            throw error
        }
        try await context.pool.query("DELETE FROM depot.processors WHERE name = 'bench-soak'")
        await node.stop()
        return figures(samples)
    }

    /// Every `rate / 10` messages each 100 ms, in one batch, until `seconds` have passed.
    static func produce(_ context: BenchContext, seconds: Int, counter: Counter) async throws {
        let target = PostgresStore(name: store, pool: context.pool)
        let payload = Data(repeating: UInt8(ascii: "x"), count: 100)
        let started = ContinuousClock.now
        for tick in 0..<(seconds * 10) {
            try await Task.sleep(until: started + .milliseconds(tick * 100))
            counter.add(try await target.store((0..<(rate / 10)).map { _ in OutgoingMessage(payload: payload) }).count)
        }
    }

    static func figures(_ samples: [Sample]) -> [BenchFigure] {
        guard let first = samples.first, let last = samples.last else { return [] }
        var figures = samples.map {
            BenchFigure(scenario: "soak", measure: "delivered at \($0.second) s", value: $0.delivered, unit: "msg/s")
        }
        // Delivery keeps up with production when it does not decay: compare the last sample with the first.
        let decay = first.delivered > 0 ? max(0, (first.delivered - last.delivered) / first.delivered * 100) : 100
        figures.append(.atMost("soak", "decay, first to last sample", decay, unit: "%", limit: 10))
        let largest = samples.map(\.tableMiB).max() ?? 0
        figures.append(BenchFigure(scenario: "soak", measure: "table+indexes at \(first.second) s", value: first.tableMiB, unit: "MiB"))
        figures.append(.atMost("soak", "table+indexes, largest", largest, unit: "MiB", limit: max(first.tableMiB * 2, 16)))
        figures.append(.atMost("soak", "node memory, largest", samples.map(\.nodeMiB).max() ?? 0, unit: "MiB", limit: 150))
        return figures
    }
}
