import Foundation

/// What a chaos run saw, kept by every producer, back end and fault injector at once: which
/// ids were answered 202 (and when, and whether held in a failover store), which reached a back
/// end (and when, and how often), what went unanswered, and when the faults struck.
final class ChaosLedger: @unchecked Sendable {
    private let lock = NSLock()
    private var accepted: [String: (at: ContinuousClock.Instant, heldIn: Bool)] = [:]
    private var delivered: [String: (first: ContinuousClock.Instant, count: Int)] = [:]
    private var deliveryTimes: [ContinuousClock.Instant] = []
    private(set) var unansweredRequests = 0
    private(set) var unansweredMessages = 0
    private var refusedByStatus: [Int: Int] = [:]
    private(set) var kills = 0
    private(set) var crashes = 0
    private var databaseBackAt: [ContinuousClock.Instant] = []

    func accept(_ ids: [String], heldIn: Bool) {
        let now = ContinuousClock.now
        lock.withLock { for id in ids where accepted[id] == nil { accepted[id] = (now, heldIn) } }
    }

    func deliver(_ id: String) {
        let now = ContinuousClock.now
        lock.withLock {
            deliveryTimes.append(now)
            if let seen = delivered[id] {
                delivered[id] = (seen.first, seen.count + 1)
            } else {
                delivered[id] = (now, 1)
            }
        }
    }

    /// A request that got no answer: its messages may or may not be stored (at least once).
    func unanswered(messages: Int) {
        lock.withLock {
            unansweredRequests += 1
            unansweredMessages += messages
        }
    }

    func refused(status: Int) { lock.withLock { refusedByStatus[status, default: 0] += 1 } }
    func killed() { lock.withLock { kills += 1 } }
    func crashed() { lock.withLock { crashes += 1 } }
    func databaseAnswers() { lock.withLock { databaseBackAt.append(.now) } }

    var acceptedCount: Int { lock.withLock { accepted.count } }

    /// Accepted ids no back end has received yet.
    func undelivered() -> [String] {
        lock.withLock { accepted.keys.filter { delivered[$0] == nil } }
    }

    /// The figures of the run; `lost` is what was accepted, never delivered and not found anywhere.
    func summary(lost: [String]) -> ChaosSummary {
        lock.withLock {
            var latencies: [Double] = []
            var heldLatencies: [Double] = []
            latencies.reserveCapacity(accepted.count)
            var heldInJournal = 0
            for (id, answer) in accepted {
                if answer.heldIn { heldInJournal += 1 }
                // Delivered before its 202 arrived (a batch's answer is slower than a fast drain): zero.
                guard let first = delivered[id]?.first else { continue }
                let latency = max(0, (first - answer.at).seconds)
                latencies.append(latency)
                if answer.heldIn { heldLatencies.append(latency) }
            }
            latencies.sort()
            heldLatencies.sort()
            let times = deliveryTimes.sorted()
            var longestPause = 0.0
            for (earlier, later) in zip(times, times.dropFirst()) { longestPause = max(longestPause, (later - earlier).seconds) }
            // How long after PostgreSQL answered again the next delivery came.
            let resumes = databaseBackAt.compactMap { back -> Double? in
                guard let index = firstIndex(in: times, atOrAfter: back) else { return nil }
                return (times[index] - back).seconds
            }
            return ChaosSummary(
                accepted: accepted.count, heldInJournal: heldInJournal, lost: lost.count,
                duplicated: delivered.values.reduce(0) { $0 + max(0, $1.count - 1) },
                deliveredWithout202: delivered.keys.reduce(0) { $0 + (accepted[$1] == nil ? 1 : 0) },
                unansweredRequests: unansweredRequests, unansweredMessages: unansweredMessages,
                refused: refusedByStatus, kills: kills, crashes: crashes,
                longestPause: longestPause, slowestResume: resumes.max(),
                latencyP50: percentile(latencies, 0.50), latencyP99: percentile(latencies, 0.99), latencyMax: latencies.last,
                heldLatencyP99: percentile(heldLatencies, 0.99),
                lostSample: Array(lost.sorted().prefix(5)))
        }
    }

    private func firstIndex(in sorted: [ContinuousClock.Instant], atOrAfter instant: ContinuousClock.Instant) -> Int? {
        var low = 0, high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle] < instant { low = middle + 1 } else { high = middle }
        }
        return low < sorted.count ? low : nil
    }

    private func percentile(_ sorted: [Double], _ fraction: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)]
    }
}

/// The figures `depot chaos` prints.
struct ChaosSummary: Sendable, Encodable {
    var accepted: Int
    var heldInJournal: Int
    var lost: Int
    var duplicated: Int
    var deliveredWithout202: Int
    var unansweredRequests: Int
    var unansweredMessages: Int
    var refused: [Int: Int]
    var kills: Int
    var crashes: Int
    /// Longest gap between two deliveries anywhere in the run, in seconds.
    var longestPause: Double
    /// Longest time from PostgreSQL answering again to the next delivery, in seconds.
    var slowestResume: Double?
    var latencyP50: Double?
    var latencyP99: Double?
    var latencyMax: Double?
    /// p99 from 202 to delivery of the messages held in a journal first.
    var heldLatencyP99: Double?
    var lostSample: [String]
}

extension Duration {
    /// The duration in seconds, as a Double.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
