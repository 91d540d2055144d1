import Foundation
import Postgres

/// Scenarios 2 and 5: a node process drains a full store through a sampling processor with the
/// no-op `drop` handler — 100,000 messages with 1, 2 and 8 members (three times each), then a
/// 1,000,000 backlog.
/// Each member claims `batch` messages with a lease and acks them together.
enum DrainBench {
    static let store = "bench-drain"
    static let batch = 100

    /// What one drain measured.
    struct Drain: Sendable {
        var rate: Double
        var cpuMicrosecondsPerMessage: Double
        /// The server's CPU per message, when it runs on this machine.
        var serverMicrosecondsPerMessage: Double?
        var idleMiB: Double
        var peakMiB: Double
    }

    /// Why a median of three: a drain of 100,000 lasts two to six seconds, and on this machine
    /// the rate of one such run moved by a fifth from one minute to the next (the disk's flush
    /// time), which the backlog's ratio to it then carried. The median of three is the rate of
    /// one of them, with its node CPU; `--quick` drains once.
    static func run(_ context: BenchContext) async throws -> [BenchFigure] {
        let size = context.quick ? 20_000 : 100_000
        let runs = context.quick ? 1 : 3
        var figures: [BenchFigure] = []
        var peak = 0.0
        for members in [1, 2, 8] {
            try await context.references.measure(members == 1
                ? ["claim-delete-1/clients-1", "claim-delete-100/clients-1"]
                : ["claim-delete-1/clients-8", "claim-delete-100/clients-8", "claim-ack-100/clients-8"])
            var drains: [Drain] = []
            for _ in 0..<runs { drains.append(try await measure(context, messages: size, members: members)) }
            let drain = drains.sorted { $0.rate < $1.rate }[runs / 2]
            peak = max(peak, drains.map(\.peakMiB).max() ?? 0)
            let measured = runs == 1 ? "\(BenchTable.integer(Double(size))) msgs" : "\(BenchTable.integer(Double(size))) msgs, median of \(runs)"
            figures.append(.rate("drain", "\(measured), \(members) member\(members == 1 ? "" : "s")",
                                 drain.rate, against: "claim-delete-100/clients-\(members == 1 ? 1 : 8)", references: context.references.values,
                                 minimumRatio: members == 8 ? 0.6 : nil, minimumRate: members == 8 ? 20_000 : nil))
            figures += cpuFigures("drain", drain, members: members)
            if members == 1 { figures.append(.atMost("drain", "node memory idle", drains[0].idleMiB, unit: "MiB", limit: 50)) }
        }
        figures.append(.atMost("drain", "node memory at full drain", peak, unit: "MiB", limit: 150))
        return figures
    }

    /// Scenario 5: the same drain with 8 members from a backlog ten times the size (1,000,000;
    /// 200,000 with `--quick`), filled and drained with no preparation, compared with
    /// `small`: the cold burst's 8-member rate, or the small-store drain's, measured before it.
    static func backlog(_ context: BenchContext, against small: BenchFigure?) async throws -> [BenchFigure] {
        let size = context.quick ? 200_000 : 1_000_000
        let drain = try await measure(context, messages: size, members: 8)
        var figure = BenchFigure(scenario: "backlog", measure: "\(BenchTable.integer(Double(size))) msgs, cold, 8 members", value: drain.rate, unit: "msg/s")
        if let small, small.value > 0 {
            figure.referenceKey = "\(small.scenario), 8 members"
            figure.reference = small.value
            figure.ratio = drain.rate / small.value
            figure.target = small.scenario == "burst" ? "≥ 80% of the cold burst" : "≥ 80% of the small-store drain"
            figure.met = drain.rate / small.value >= 0.8
        }
        return [figure] + cpuFigures("backlog", drain, members: 8)
    }

    /// What one message cost the node, and the server when it is on this machine.
    private static func cpuFigures(_ scenario: String, _ drain: Drain, members: Int) -> [BenchFigure] {
        let who = "\(members) member\(members == 1 ? "" : "s")"
        var figures = [BenchFigure(scenario: scenario, measure: "node CPU per message, \(who)", value: drain.cpuMicrosecondsPerMessage, unit: "µs/msg")]
        if let server = drain.serverMicrosecondsPerMessage {
            figures.append(BenchFigure(scenario: scenario, measure: "server CPU per message, \(who)", value: server, unit: "µs/msg"))
        }
        return figures
    }

    static func measure(_ context: BenchContext, messages: Int, members: Int) async throws -> Drain {
        try await context.reset(stores: [store])
        context.progress("drain: filling \(store) with \(messages) messages")
        try await context.fill(store, count: messages)
        try await context.pool.query("""
            INSERT INTO depot.processors (name, kind, store, handler, interval_ms, concurrency, member_count, is_active)
            VALUES ('bench-drain', 'sampling', \(store), 'drop', 0, \(batch), \(members), false)
            """)
        let node = try await context.startNode("bench-drain-\(members)")
        try await Task.sleep(for: .milliseconds(500))
        let idle = node.residentMiB
        let cpuBefore = node.cpuSeconds
        let serverBefore = context.serverCPU?.seconds
        context.progress("drain: \(messages) messages, \(members) member(s), batches of \(batch)")
        let started = ContinuousClock.now
        try await context.pool.query("SELECT depot.activate_processor('bench-drain')")
        let sampler = Task {
            var peak = 0.0
            while !Task.isCancelled {
                peak = max(peak, node.residentMiB)
                try? await Task.sleep(for: .milliseconds(100))
            }
            return peak
        }
        let seconds: Double
        do {
            seconds = try await context.drained(store, from: started, timeout: .seconds(600))
        } catch {
            sampler.cancel()
            await node.stop()
            throw error
        }
        let cpu = node.cpuSeconds - cpuBefore
        let server = serverBefore.flatMap { before in context.serverCPU.map { $0.seconds - before } }
        sampler.cancel()
        let peak = max(await sampler.value, node.residentMiB)
        try await context.pool.query("DELETE FROM depot.processors WHERE name = 'bench-drain'")
        await node.stop()
        return Drain(rate: Double(messages) / seconds, cpuMicrosecondsPerMessage: cpu / Double(messages) * 1e6,
                     serverMicrosecondsPerMessage: server.map { $0 / Double(messages) * 1e6 }, idleMiB: idle, peakMiB: peak)
    }
}
