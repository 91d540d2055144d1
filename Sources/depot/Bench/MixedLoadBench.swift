import Depot
import Foundation
import Postgres
#if canImport(Glibc)
import Glibc
#endif

/// Scenario "mixed": producing and draining at once, as a live system does. For 60 s (10 with
/// `--quick`) 8 library producers store batches of 100 and 50 keep-alive HTTP clients post one
/// message each to a node's ingress, at a fixed offered rate, while 8 members of one node drain
/// the same store. Reports messages in and out per second, the waiting count's trend (a store
/// that cannot keep up grows), and end-to-end latency: from the moment a producer makes a message
/// (its body carries that moment) to its handler starting. The draining node runs in this
/// process so both moments come from one clock; the ingress node is a process of its own, and
/// the processor is pinned to the draining node so the ingress node only stores.
enum MixedLoadBench {
    static let store = "bench-mixed"
    static let processor = "bench-mixed"
    static let drainNode = "bench-mixed-drain"
    /// Offered load: library producers × batches per second × batch size, and HTTP clients × requests per second.
    static let producers = 8, batchesPerSecond = 16, batch = 100
    static let httpClients = 50, requestsPerSecond = 64
    static let members = 8
    static var offered: Int { producers * batchesPerSecond * batch + httpClients * requestsPerSecond }

    static func run(_ context: BenchContext) async throws -> [BenchFigure] {
        let seconds = context.seconds(full: 60, quick: 10)
        try await context.reset(stores: [store])
        let moments = Throughput()
        var handlers = HandlerRegistry()
        handlers.register(processor) { handler in moments.handled(handler.message.payload) }
        // The node's own pool, as a node process has; the producers use the context's.
        let nodePool = ConnectionPool(ConnectionConfiguration(context.databaseURL), maximumConnections: 10)
        let node = Node(Node.Configuration(name: drainNode), pool: nodePool, handlers: handlers)
        let running = Task { try await node.run() }
        let port = try freeLoopbackPort()
        let ingress = try await context.startNode("bench-mixed-http", ["--http", "127.0.0.1:\(port)"])
        defer {
            running.cancel()
            Task { await ingress.stop(); await nodePool.close() }
        }
        try await context.pool.query("""
            INSERT INTO depot.processors (name, kind, store, handler, interval_ms, concurrency, member_count, pinned_servers)
            VALUES (\(processor), 'sampling', \(store), \(processor), 0, \(batch), \(members), ARRAY[\(drainNode)])
            """)
        try await waitForProcessor(context)

        context.progress("mixed: \(producers) library producers (batches of \(batch)) and \(httpClients) HTTP clients offering \(BenchTable.integer(Double(offered))) msg/s for \(seconds) s, \(members) members draining")
        let started = ContinuousClock.now
        let sampler = Task { try await sampleWaiting(context, moments: moments, every: .seconds(1)) }
        async let http = postOverHTTP(port: port, seconds: seconds)
        let commits = LatencyRecorder()
        let stored = try await produceThroughLibrary(context, seconds: seconds, commits: commits)
        let httpOutcome = try await http
        let window = (ContinuousClock.now - started).benchSeconds
        let handledInWindow = moments.handledCount
        sampler.cancel()
        let samples = (try? await sampler.value) ?? moments.samples
        if httpOutcome.refused > 0 { throw BenchFailure("HTTP ingress refused \(httpOutcome.refused) requests during the mixed load (expected 202 for each)") }
        _ = try await context.drained(store, from: .now, timeout: .seconds(300))

        try await context.pool.query("DELETE FROM depot.processors WHERE name = \(processor)")
        await node.stop()
        _ = try? await running.value
        let inRate = Double(stored + httpOutcome.accepted) / window
        let outRate = Double(handledInWindow) / window
        let trend = waitingTrend(samples.dropFirst(samples.count / 6))
        let latency = moments.latencies.summary()
        // The end-to-end figure starts before the producer's commit: its share, measured apart.
        let commit = commits.summary()
        let answer = httpOutcome.latencySummary
        context.progress("mixed: the longest end-to-end latency in each second (ms): \(moments.worstLatencyBySecond.map { Int($0) })")
        context.progress("mixed: in \(Int(inRate)) msg/s (\(Int(Double(httpOutcome.accepted) / window)) over HTTP), out \(Int(outRate)) msg/s, waiting \(samples.map(\.waiting)), p99 \(latency.p99) ms")
        let most = samples.map(\.waiting).max() ?? 0
        return [
            .rate("mixed", "in: library batches + HTTP singles, offered \(BenchTable.integer(Double(offered)))", inRate, against: nil,
                  references: [:], minimumRate: 15_000),
            .rate("mixed", "out: \(members) members draining the same store", outRate, against: nil, references: [:], minimumRate: 15_000),
            .atMost("mixed", "waiting count trend (least squares, after the first sixth; most \(BenchTable.integer(Double(most))))", trend,
                    unit: "msg/s", limit: Double(offered) / 100),
            .atMost("mixed", "end-to-end p50 (made → handler start)", latency.p50, unit: "ms", limit: nil),
            .atMost("mixed", "end-to-end p99", latency.p99, unit: "ms", limit: 50),
            .atMost("mixed", "end-to-end max", latency.max, unit: "ms", limit: nil),
            .atMost("mixed", "of which the producer's commit: library batch p50 (made → committed)", commit.p50, unit: "ms", limit: nil),
            .atMost("mixed", "library batch p99 (made → committed)", commit.p99, unit: "ms", limit: nil),
            .atMost("mixed", "HTTP single p99 (sent → 202)", answer.p99, unit: "ms", limit: nil),
        ]
    }

    /// Waits until the draining node reports the processor running.
    private static func waitForProcessor(_ context: BenchContext) async throws {
        let started = ContinuousClock.now
        while try await context.pool.query("""
            SELECT 1 FROM depot.nodes WHERE name = \(drainNode) AND processors ? \(processor)
            """).first == nil {
            guard ContinuousClock.now - started < .seconds(30) else { throw BenchFailure("the mixed-load node never started its processor") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// `producers` tasks, each storing a batch of `batch` through `Producer` every
    /// 1/`batchesPerSecond` s (at once when the last one came back late); returns messages stored.
    /// `commits` gets each batch's time from its making to its commit.
    private static func produceThroughLibrary(_ context: BenchContext, seconds: Int, commits: LatencyRecorder) async throws -> Int {
        let producer = Producer(pool: context.pool, stores: StoreDirectory(pool: context.pool))
        let interval = Duration.seconds(1) / batchesPerSecond
        let started = ContinuousClock.now
        let deadline = started + .seconds(seconds)
        return try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<producers {
                group.addTask {
                    var next = started + interval * (Double(index) / Double(producers))
                    var stored = 0
                    while next < deadline {
                        if next > .now { try await Task.sleep(until: next) }
                        let made = ContinuousClock.now
                        let messages = (0..<batch).map { _ in OutgoingMessage(payload: stampedData(), contentType: "text/plain") }
                        stored += try await producer.store(messages, in: store).receipts.count
                        commits.record(.now - made)
                        next += interval
                    }
                    return stored
                }
            }
            return try await group.reduce(0, +)
        }
    }

    /// `httpClients` keep-alive connections, each posting one stamped message every 1/`requestsPerSecond` s.
    private static func postOverHTTP(port: Int, seconds: Int) async throws -> HTTPLoadGenerator.Outcome {
        let head = Array("POST /stores/\(store)/messages HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Type: text/plain\r\nContent-Length: \(payloadSize)\r\n\r\n".utf8)
        var load = HTTPLoadGenerator(port: port, connections: httpClients, request: head, acceptedStatus: 202)
        load.interval = .seconds(1) / requestsPerSecond
        load.makeRequest = { head + stampedPayload() }
        return try await load.run(seconds: seconds)
    }

    /// Every `every`, how many messages the store holds (ready and in flight).
    private static func sampleWaiting(_ context: BenchContext, moments: Throughput, every: Duration) async throws -> [Throughput.Sample] {
        let started = ContinuousClock.now
        while !Task.isCancelled {
            try await Task.sleep(for: every)
            let waiting = try await context.depth(store)
            moments.sample(Throughput.Sample(second: (ContinuousClock.now - started).benchSeconds, waiting: waiting))
        }
        return moments.samples
    }

    /// The least-squares slope of the waiting count over time, in messages per second.
    static func waitingTrend<S: Collection>(_ samples: S) -> Double where S.Element == Throughput.Sample {
        guard samples.count >= 2 else { return 0 }
        let n = Double(samples.count)
        let meanX = samples.reduce(0) { $0 + $1.second } / n
        let meanY = samples.reduce(0) { $0 + Double($1.waiting) } / n
        let covariance = samples.reduce(0) { $0 + ($1.second - meanX) * (Double($1.waiting) - meanY) }
        let variance = samples.reduce(0) { $0 + ($1.second - meanX) * ($1.second - meanX) }
        return variance > 0 ? covariance / variance : 0
    }

    static let payloadSize = 100

    /// A 100-byte body that starts with the monotonic clock's nanoseconds now and a space.
    static func stampedPayload() -> [UInt8] {
        var bytes = Array("\(monotonicNanoseconds()) ".utf8)
        bytes += [UInt8](repeating: UInt8(ascii: "x"), count: payloadSize - bytes.count)
        return bytes
    }

    static func stampedData() -> Data { Data(stampedPayload()) }
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for this process's producers and its node's handlers.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// What the handlers saw (count and latency from each body's stamp) and the waiting count's samples.
final class Throughput: @unchecked Sendable {
    struct Sample: Sendable {
        var second: Double
        var waiting: Int
    }

    let latencies = LatencyRecorder()
    private let lock = NSLock()
    private var count = 0
    private var taken: [Sample] = []
    private let started = monotonicNanoseconds()
    /// The longest latency of the messages handled in each second since this began, in ms.
    private var worstBySecond: [Double] = []

    var worstLatencyBySecond: [Double] { lock.withLock { worstBySecond } }

    /// A handler started on `payload`, whose first bytes are the moment it was made.
    func handled(_ payload: Data) {
        var stamp: UInt64 = 0
        for byte in payload.prefix(20) {
            guard (48...57).contains(byte) else { break }
            stamp = stamp * 10 + UInt64(byte - 48)
        }
        let now = monotonicNanoseconds()
        guard stamp > 0, now >= stamp else { return lock.withLock { count += 1 } }
        latencies.record(.nanoseconds(Int64(now - stamp)))
        let second = Int((now - started) / 1_000_000_000)
        let milliseconds = Double(now - stamp) / 1e6
        lock.withLock {
            count += 1
            while worstBySecond.count <= second { worstBySecond.append(0) }
            worstBySecond[second] = max(worstBySecond[second], milliseconds)
        }
    }

    var handledCount: Int { lock.withLock { count } }

    func sample(_ sample: Sample) { lock.withLock { taken.append(sample) } }

    var samples: [Sample] { lock.withLock { taken } }
}
