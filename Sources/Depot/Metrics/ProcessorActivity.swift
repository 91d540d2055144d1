import Foundation

/// What one processor's members on this node did since the node last reported: the deltas a
/// heartbeat adds to `depot.processor_stats`, and the newest failure reason.
public struct ProcessorActivity: Sendable, Equatable {
    public var processor: String
    public var delivered = 0
    public var failed = 0
    public var deadLettered = 0
    /// Why the newest failed attempt failed; nil when none failed.
    public var lastError: String?
    public var lastErrorAt: Date?

    public init(processor: String, delivered: Int = 0, failed: Int = 0, deadLettered: Int = 0,
                lastError: String? = nil, lastErrorAt: Date? = nil) {
        self.processor = processor
        self.delivered = delivered
        self.failed = failed
        self.deadLettered = deadLettered
        self.lastError = lastError
        self.lastErrorAt = lastErrorAt
    }

    /// True when there is nothing to report.
    public var isEmpty: Bool { delivered == 0 && failed == 0 && deadLettered == 0 && lastError == nil }

    /// Counts one event (retries are not reported: a failure already counts the attempt).
    mutating func count(_ event: NodeMetrics.ProcessorEvent, error: String?, at time: Date) {
        switch event {
        case .delivered: delivered += 1
        case .failed: failed += 1
        case .deadLettered: deadLettered += 1
        case .retried: break
        }
        if let error {
            lastError = error
            lastErrorAt = time
        }
    }

    /// Adds `other`'s counts; the newer of the two errors wins.
    mutating func merge(_ other: ProcessorActivity) {
        delivered += other.delivered
        failed += other.failed
        deadLettered += other.deadLettered
        if let time = other.lastErrorAt, lastErrorAt.map({ time > $0 }) ?? true {
            lastError = other.lastError
            lastErrorAt = time
        }
    }
}
