import Depot
import Foundation
import Postgres

/// Scenario 3: end-to-end latency, from `Producer.store` returning to the handler starting,
/// at a steady 100 and 1,000 messages/s. The node runs in this process so that both moments
/// are read from one clock; idle members wake on LISTEN/NOTIFY.
enum LatencyBench {
    static let store = "bench-latency"

    static func run(_ context: BenchContext) async throws -> [BenchFigure] {
        let seconds = context.seconds(full: 10, quick: 2)
        var figures: [BenchFigure] = []
        for rate in [100, 1000] {
            try await context.reset(stores: [store])
            let summary = try await measure(context, rate: rate, seconds: seconds)
            let label = "at \(BenchTable.integer(Double(rate))) msg/s"
            figures.append(.atMost("latency", "p50 \(label)", summary.p50, unit: "ms", limit: rate == 100 ? 2 : nil))
            figures.append(.atMost("latency", "p99 \(label)", summary.p99, unit: "ms", limit: rate == 100 ? 5 : nil))
            figures.append(.atMost("latency", "max \(label)", summary.max, unit: "ms", limit: nil))
        }
        return figures
    }

    static func measure(_ context: BenchContext, rate: Int, seconds: Int) async throws -> LatencyRecorder.Summary {
        context.progress("latency: \(rate) msg/s for \(seconds) s, store → handler start")
        let moments = Moments()
        var handlers = HandlerRegistry()
        handlers.register("bench-latency") { handler in moments.started(handler.message.id) }
        let node = Node(Node.Configuration(name: "bench-latency-\(rate)"), pool: context.pool, handlers: handlers)
        let running = Task { try await node.run() }
        defer { running.cancel() }
        try await context.pool.query("""
            INSERT INTO depot.processors (name, kind, store, handler, interval_ms, concurrency, member_count)
            VALUES ('bench-latency', 'sampling', \(store), 'bench-latency', 0, 10, 2)
            """)
        // The node starts the processor on the notification; wait until it reports it running.
        let ready = ContinuousClock.now
        while try await context.pool.query("""
            SELECT 1 FROM depot.nodes WHERE name = \("bench-latency-\(rate)") AND processors ? 'bench-latency'
            """).first == nil {
            guard ContinuousClock.now - ready < .seconds(30) else { throw BenchFailure("the latency node never started its processor") }
            try await Task.sleep(for: .milliseconds(20))
        }

        let producer = Producer(pool: context.pool, stores: StoreDirectory(pool: context.pool))
        let count = rate * seconds
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                let due = started + .microseconds(Int64(index) * 1_000_000 / Int64(rate))
                if due > .now { try await Task.sleep(until: due) }
                group.addTask {
                    let receipt = try await producer.store(OutgoingMessage(text: "latency \(index)"), in: store)
                    moments.stored(receipt.receipts[0].id)
                }
            }
            try await group.waitForAll()
        }
        _ = try await context.drained(store, from: started, timeout: .seconds(60))
        while moments.handled < count {
            guard ContinuousClock.now - started < .seconds(Int64(seconds) + 60) else {
                throw BenchFailure("only \(moments.handled) of \(count) messages reached the handler")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        try await context.pool.query("DELETE FROM depot.processors WHERE name = 'bench-latency'")
        await node.stop()
        _ = try? await running.value
        return moments.latencies().summary()
    }
}

/// When each message's store returned and when its handler started.
private final class Moments: @unchecked Sendable {
    private let lock = NSLock()
    private var storedAt: [UUID: ContinuousClock.Instant] = [:]
    private var startedAt: [UUID: ContinuousClock.Instant] = [:]

    func stored(_ id: UUID) {
        let now = ContinuousClock.now
        lock.withLock { storedAt[id] = now }
    }

    func started(_ id: UUID) {
        let now = ContinuousClock.now
        lock.withLock { if startedAt[id] == nil { startedAt[id] = now } }
    }

    var handled: Int { lock.withLock { startedAt.count } }

    /// Handler start minus store return; zero when the handler began before the producer heard back.
    func latencies() -> LatencyRecorder {
        let recorder = LatencyRecorder()
        lock.withLock {
            for (id, stored) in storedAt {
                guard let started = startedAt[id] else { continue }
                recorder.record(max(.zero, started - stored))
            }
        }
        return recorder
    }
}
