import Foundation

/// Durations from many tasks, summarised as percentiles in milliseconds.
final class LatencyRecorder: @unchecked Sendable {
    struct Summary: Sendable {
        var count: Int
        var p50: Double
        var p99: Double
        var max: Double
    }

    private let lock = NSLock()
    private var milliseconds: [Double] = []

    func record(_ duration: Duration) {
        let value = duration.benchSeconds * 1000
        lock.withLock { milliseconds.append(value) }
    }

    func summary() -> Summary {
        let sorted = lock.withLock { milliseconds }.sorted()
        guard !sorted.isEmpty else { return Summary(count: 0, p50: 0, p99: 0, max: 0) }
        func percentile(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)] }
        return Summary(count: sorted.count, p50: percentile(0.5), p99: percentile(0.99), max: sorted.last!)
    }
}
