import Foundation

/// What a node counts while it runs: per processor deliveries, failures, retries, dead letters
/// and a delivery latency histogram; HTTP responses by status; producer writes held in failover.
/// Counters only go up and live as long as the process. Thread-safe; `/metrics` renders it.
public final class NodeMetrics: @unchecked Sendable {
    /// Upper bounds (seconds) of the delivery latency histogram's buckets.
    public static let latencyBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

    /// How one attempt at a message ended, as counted.
    public enum ProcessorEvent: String, Sendable, CaseIterable {
        /// The target took it.
        case delivered
        /// An attempt failed (it is then retried, dead-lettered or the processor deactivates).
        case failed
        /// Put back in line for another attempt after the retry interval.
        case retried
        /// Taken out of line: to the dead letters or the processor's fail store.
        case deadLettered = "dead_lettered"
    }

    private struct Histogram {
        var buckets = [UInt64](repeating: 0, count: NodeMetrics.latencyBuckets.count)
        var count: UInt64 = 0
        var sum: Double = 0
    }

    private let lock = NSLock()
    private var processorEvents: [String: [ProcessorEvent: UInt64]] = [:]
    private var latencies: [String: Histogram] = [:]
    private var httpResponses: [Int: UInt64] = [:]
    private var heldInFailover: [String: UInt64] = [:]
    private var stored: [String: UInt64] = [:]
    /// What happened since the last `takeActivity()`, by processor: what heartbeats write to
    /// `depot.processor_stats`.
    private var activity: [String: ProcessorActivity] = [:]

    public init() {}

    /// Counts `event` for `processor`; `error` (with `.failed`) is remembered as its last failure.
    public func record(_ event: ProcessorEvent, processor: String, error: String? = nil) {
        lock.withLock {
            processorEvents[processor, default: [:]][event, default: 0] += 1
            activity[processor, default: ProcessorActivity(processor: processor)].count(event, error: error, at: Date())
        }
    }

    /// The activity since the last call, by processor name, and starts counting afresh. A caller
    /// that could not write it gives it back with `restoreActivity(_:)`, so nothing is lost.
    public func takeActivity() -> [ProcessorActivity] {
        lock.withLock {
            defer { activity.removeAll() }
            return activity.values.filter { !$0.isEmpty }.sorted { $0.processor < $1.processor }
        }
    }

    /// Adds back activity taken by `takeActivity()` that could not be written.
    public func restoreActivity(_ taken: [ProcessorActivity]) {
        lock.withLock {
            for item in taken { activity[item.processor, default: ProcessorActivity(processor: item.processor)].merge(item) }
        }
    }

    /// Adds one delivery attempt's duration to `processor`'s latency histogram.
    public func observeDelivery(seconds: Double, processor: String) {
        lock.withLock {
            var histogram = latencies[processor] ?? Histogram()
            if let index = Self.latencyBuckets.firstIndex(where: { seconds <= $0 }) { histogram.buckets[index] += 1 }
            histogram.count += 1
            histogram.sum += seconds
            latencies[processor] = histogram
        }
    }

    /// Counts one HTTP response the node's server wrote.
    public func recordHTTPResponse(status: Int) {
        lock.withLock { httpResponses[status, default: 0] += 1 }
    }

    /// Counts messages a producer stored through this node, and where (`heldIn` a failover store or not).
    public func recordStored(_ count: Int, store: String, heldIn failover: String?) {
        lock.withLock {
            stored[store, default: 0] += UInt64(count)
            if let failover { heldInFailover[failover, default: 0] += UInt64(count) }
        }
    }

    /// How often `event` was counted for `processor`.
    public func count(_ event: ProcessorEvent, processor: String) -> UInt64 {
        lock.withLock { processorEvents[processor]?[event] ?? 0 }
    }

    /// The counters in Prometheus text format, with `stores` (read from the database by the caller)
    /// as gauges, and `waitingClaims`, the HTTP claims long-polling now, when given.
    public func render(node: String, stores: [StoreStatistics]?, databaseUp: Bool, waitingClaims: Int? = nil) -> String {
        var out = PrometheusText()
        out.family("depot_database_up", type: "gauge", help: "1 when the node's last database check succeeded.")
        out.sample("depot_database_up", [("node", node)], databaseUp ? 1 : 0)
        if let stores {
            for (name, help, value) in [
                ("depot_store_ready_messages", "Messages ready to be claimed.", \StoreStatistics.ready),
                ("depot_store_delayed_messages", "Messages waiting for a delay or retry.", \StoreStatistics.delayed),
                ("depot_store_in_flight_messages", "Messages leased to a consumer.", \StoreStatistics.inFlight),
                ("depot_store_dead_letters", "Dead-lettered messages of the store.", \StoreStatistics.deadLetters),
            ] as [(String, String, KeyPath<StoreStatistics, Int>)] {
                out.family(name, type: "gauge", help: help)
                for store in stores { out.sample(name, [("store", store.store)], Double(store[keyPath: value])) }
            }
        }
        lock.withLock {
            out.family("depot_processor_messages_total", type: "counter",
                       help: "Messages by processor and outcome (delivered, failed, retried, dead_lettered) on this node.")
            for (processor, events) in processorEvents.sorted(by: { $0.key < $1.key }) {
                for event in ProcessorEvent.allCases {
                    out.sample("depot_processor_messages_total", [("processor", processor), ("outcome", event.rawValue)],
                               Double(events[event] ?? 0))
                }
            }
            out.family("depot_delivery_duration_seconds", type: "histogram", help: "How long one delivery attempt took.")
            for (processor, histogram) in latencies.sorted(by: { $0.key < $1.key }) {
                var cumulative: UInt64 = 0
                for (bound, count) in zip(Self.latencyBuckets, histogram.buckets) {
                    cumulative += count
                    out.sample("depot_delivery_duration_seconds_bucket", [("processor", processor), ("le", PrometheusText.format(bound))],
                               Double(cumulative))
                }
                out.sample("depot_delivery_duration_seconds_bucket", [("processor", processor), ("le", "+Inf")], Double(histogram.count))
                out.sample("depot_delivery_duration_seconds_sum", [("processor", processor)], histogram.sum)
                out.sample("depot_delivery_duration_seconds_count", [("processor", processor)], Double(histogram.count))
            }
            out.family("depot_http_responses_total", type: "counter", help: "HTTP responses the node's server wrote, by status.")
            for (status, count) in httpResponses.sorted(by: { $0.key < $1.key }) {
                out.sample("depot_http_responses_total", [("status", String(status))], Double(count))
            }
            out.family("depot_produced_messages_total", type: "counter", help: "Messages producers stored through this node, by store.")
            for (store, count) in stored.sorted(by: { $0.key < $1.key }) {
                out.sample("depot_produced_messages_total", [("store", store)], Double(count))
            }
            out.family("depot_failover_held_messages_total", type: "counter",
                       help: "Messages held in a failover store because the primary could not take them.")
            for (store, count) in heldInFailover.sorted(by: { $0.key < $1.key }) {
                out.sample("depot_failover_held_messages_total", [("failover_store", store)], Double(count))
            }
        }
        if let waitingClaims {
            out.family("depot_http_waiting_claims", type: "gauge", help: "HTTP claims waiting (wait_ms) for messages on this node now.")
            out.sample("depot_http_waiting_claims", [], Double(waitingClaims))
        }
        return out.text
    }
}
