import Depot
import Foundation

/// Scenario "groups": Spring's message groups in PostgreSQL. First, adding to groups: one
/// producer adding 100 messages at a time to a new group each call (`addToGroup`, one round
/// trip), judged against the plain batches of 100 measured by `enqueue` in the same run (else
/// the bare 100-row INSERT). Then the aggregating processor: 100,000 messages (20,000 with
/// `--quick`) in 1,000 groups of 100 whose members are interleaved (message i belongs to group
/// i mod 1,000), filled with no preparation, released by size into a target store by a node
/// process with 2 members; the rate is member messages per second until the last aggregate is in.
enum GroupsBench {
    static let adds = "bench-groups-add"
    static let parts = "bench-groups-parts"
    static let out = "bench-groups-out"
    static let groupSize = 100

    static func run(_ context: BenchContext, plainBatches: BenchFigure?) async throws -> [BenchFigure] {
        var figures = [try await adding(context, against: plainBatches)]
        figures.append(try await aggregating(context))
        return figures
    }

    private static func adding(_ context: BenchContext, against plain: BenchFigure?) async throws -> BenchFigure {
        let seconds = context.seconds(full: 10, quick: 2)
        try await context.reset(stores: [adds])
        if plain == nil { try await context.references.measure(["insert-100/clients-1"]) }
        context.progress("groups: adding \(groupSize) messages to a new group per call, 1 producer, \(seconds) s")
        let store = PostgresStore(name: adds, pool: context.pool)
        let payload = Data(repeating: UInt8(ascii: "x"), count: 100)
        let batch = (0..<groupSize).map { _ in OutgoingMessage(payload: payload) }
        let counter = Counter()
        let rate = try await EnqueueBench.loop(seconds: seconds, workers: 1) {
            counter.add()
            _ = try await store.addToGroup("group-\(counter.value)", batch)
            return groupSize
        }
        let measure = "adding to groups, \(groupSize) per call"
        guard let plain, plain.value > 0 else {
            return .rate("groups", measure, rate, against: "insert-100/clients-1", references: context.references.values, minimumRatio: 0.5)
        }
        var figure = BenchFigure(scenario: "groups", measure: measure, value: rate, unit: "msg/s")
        figure.referenceKey = "enqueue, batches of 100 (Depot)"
        figure.reference = plain.value
        figure.ratio = rate / plain.value
        figure.target = "≥ 50% of the batched enqueue"
        figure.met = rate / plain.value >= 0.5
        return figure
    }

    private static func aggregating(_ context: BenchContext) async throws -> BenchFigure {
        let size = context.quick ? 20_000 : 100_000
        let groups = size / groupSize
        try await context.reset(stores: [parts, out])
        let target = PostgresStore(name: parts, pool: context.pool)
        let payload = Data(repeating: UInt8(ascii: "x"), count: 100)
        var index = 0
        while index < size {
            let batch = (index..<min(index + 1000, size)).map {
                OutgoingMessage(payload: payload, headers: ["Order": "order-\($0 % groups)"], contentType: "application/json")
            }
            _ = try await target.store(batch)
            index += batch.count
        }
        try await context.pool.query("""
            INSERT INTO depot.processors (name, kind, store, target_store, release_size, correlation_header, interval_ms, batch_size, member_count)
            VALUES ('bench-groups', 'aggregating', \(parts), \(out), \(groupSize), 'Order', 0, 100, 2)
            """)
        context.progress("groups: aggregating \(BenchTable.integer(Double(size))) messages in \(groups) interleaved groups of \(groupSize), 2 members")
        let started = ContinuousClock.now
        let node = try await context.startNode("bench-groups")
        defer { Task { await node.stop() } }
        _ = try await context.drained(parts, from: started, timeout: .seconds(600))
        while try await context.depth(out) < groups {
            guard ContinuousClock.now - started < .seconds(600) else {
                throw BenchFailure("groups: \(try await context.depth(out)) of \(groups) aggregates after 600 s")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let rate = Double(size) / (ContinuousClock.now - started).benchSeconds
        await node.stop()
        return .rate("groups", "aggregating \(BenchTable.integer(Double(size))), groups of \(groupSize) released by size, 2 members", rate,
                     against: nil, references: [:], minimumRate: 10_000)
    }
}
