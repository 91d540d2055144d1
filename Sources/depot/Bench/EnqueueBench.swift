import Depot
import DepotHTTP
import Foundation

/// Scenario 1: storing messages — one per call (1 and 8 producers, through the `Producer`, which
/// commits concurrent calls together), batches of 100 and 1,000, and HTTP ingress with one
/// keep-alive client sending one message at a time, then 50, against a node process.
enum EnqueueBench {
    static let store = "bench-enqueue"

    static func run(_ context: BenchContext) async throws -> [BenchFigure] {
        let seconds = context.seconds(full: 10, quick: 2)
        try await context.reset(stores: [store])
        let producer = Producer(pool: context.pool, stores: StoreDirectory(pool: context.pool))
        let payload = Data(repeating: UInt8(ascii: "x"), count: 100)
        var figures: [BenchFigure] = []

        // One producer waits on each commit's fsync, whose time moves severalfold within
        // minutes here: judged by alternating pairs with the bare INSERT, not one run of each.
        let pairSeconds = context.quick ? 2 : 3
        let rounds = context.quick ? 3 : 5
        context.progress("enqueue: one message per call, 1 producer, \(rounds) pairs of \(pairSeconds) s with the bare INSERT")
        let single = try await AlternatingPairs.measure(context, key: "insert-1/clients-1", rounds: rounds, seconds: pairSeconds) {
            try await loop(seconds: pairSeconds, workers: 1) {
                _ = try await producer.store(OutgoingMessage(payload: payload), in: store)
                return 1
            }
        }
        figures.append(.paired("enqueue", "single message, 1 producer", single, against: "insert-1/clients-1", minimumRatio: 0.9))
        try await context.references.measure(["insert-1/clients-8"])
        context.progress("enqueue: one message per call, 8 producers, \(seconds) s")
        let eight = try await loop(seconds: seconds, workers: 8) {
            _ = try await producer.store(OutgoingMessage(payload: payload), in: store)
            return 1
        }
        figures.append(.rate("enqueue", "single message, 8 producers", eight,
                             against: "insert-1/clients-8", references: context.references.values, minimumRatio: 0.8))
        let target = PostgresStore(name: store, pool: context.pool)
        for size in [100, 1000] {
            try await context.references.measure(["insert-\(size)/clients-1"])
            context.progress("enqueue: batches of \(size), 1 producer, \(seconds) s")
            let batch = (0..<size).map { _ in OutgoingMessage(payload: payload) }
            let rate = try await loop(seconds: seconds, workers: 1) {
                try await target.store(batch).count
            }
            figures.append(.rate("enqueue", "batches of \(BenchTable.integer(Double(size)))", rate,
                                 against: "insert-\(size)/clients-1", references: context.references.values, minimumRatio: 0.7))
        }
        try await context.reset(stores: [store])
        figures += try await overHTTP(context, seconds: seconds, payload: payload)
        return figures
    }

    /// One keep-alive client, then 50, POSTing one message each per request to a node's ingress,
    /// driven by one poll(2) thread so that the clients take little of the CPU the node and PostgreSQL share.
    static func overHTTP(_ context: BenchContext, seconds: Int, payload: Data) async throws -> [BenchFigure] {
        let port = try freeLoopbackPort()
        let node = try await context.startNode("bench-http", ["--http", "127.0.0.1:\(port)"])
        defer { Task { await node.stop() } }
        var request = "POST /stores/\(store)/messages HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        request += "Content-Type: text/plain\r\nContent-Length: \(payload.count)\r\n\r\n"
        // One client sending one message at a time: bound by the commit, like the bare single
        // INSERT, so judged by alternating pairs with it (see the library's single producer).
        let pairSeconds = context.quick ? 2 : 3
        let rounds = context.quick ? 3 : 5
        context.progress("enqueue: HTTP ingress, 1 keep-alive client, one message at a time, \(rounds) pairs of \(pairSeconds) s with the bare INSERT")
        var refusedSingles = 0
        let single = try await AlternatingPairs.measure(context, key: "insert-1/clients-1", rounds: rounds, seconds: pairSeconds) {
            let client = HTTPLoadGenerator(port: port, connections: 1, request: Array(request.utf8) + payload, acceptedStatus: 202)
            let started = ContinuousClock.now
            let outcome = try await client.run(seconds: pairSeconds)
            refusedSingles += outcome.refused
            return Double(outcome.accepted) / (ContinuousClock.now - started).benchSeconds
        }
        context.progress("enqueue: HTTP ingress, 50 keep-alive clients, \(seconds) s")
        let load = HTTPLoadGenerator(port: port, connections: 50, request: Array(request.utf8) + payload, acceptedStatus: 202)
        let started = ContinuousClock.now
        let cpuBefore = node.cpuSeconds
        let outcome = try await load.run(seconds: seconds)
        let rate = Double(outcome.accepted) / (ContinuousClock.now - started).benchSeconds
        let cpuPerMessage = (node.cpuSeconds - cpuBefore) / Double(max(outcome.accepted, 1)) * 1e6
        await node.stop()
        if outcome.refused + refusedSingles > 0 {
            throw BenchFailure("HTTP ingress refused \(outcome.refused + refusedSingles) requests (expected 202 for every one)")
        }
        let summary = outcome.latencySummary
        return [
            .paired("enqueue", "HTTP ingress, 1 client, one at a time", single, against: "insert-1/clients-1", minimumRatio: 0.9),
            .rate("enqueue", "HTTP ingress, 50 clients", rate, against: nil, references: context.references.values, minimumRate: 10_000),
            .atMost("enqueue", "HTTP ingress p50", summary.p50, unit: "ms", limit: nil),
            .atMost("enqueue", "HTTP ingress p99", summary.p99, unit: "ms", limit: 20),
            BenchFigure(scenario: "enqueue", measure: "HTTP ingress node CPU per message", value: cpuPerMessage, unit: "µs/msg"),
        ]
    }

    /// Runs `body` in `workers` tasks for `seconds`; returns what the bodies counted per second.
    static func loop(seconds: Int, workers: Int, _ body: @escaping @Sendable () async throws -> Int) async throws -> Double {
        let started = ContinuousClock.now
        let deadline = started + .seconds(seconds)
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<workers {
                group.addTask {
                    var done = 0
                    while ContinuousClock.now < deadline { done += try await body() }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
        return Double(total) / (ContinuousClock.now - started).benchSeconds
    }
}

/// A port the kernel says is free on 127.0.0.1 right now.
func freeLoopbackPort() throws -> Int {
    let server = HTTPServer(.init(host: "127.0.0.1", port: 0)) { _ in HTTPResponse(status: 204) }
    try server.start()
    defer { server.stop() }
    return server.port
}

/// Counts from many tasks.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add(_ n: Int = 1) { lock.withLock { count += n } }
    var value: Int { lock.withLock { count } }
}
