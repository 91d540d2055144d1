import Foundation

/// One number the benchmark measured, with what it is compared to.
struct BenchFigure: Sendable, Codable {
    /// The scenario, as `--only` names it: enqueue, drain, latency, forwarding, backlog, soak.
    var scenario: String
    /// What was measured, e.g. "single message, 8 producers".
    var measure: String
    var value: Double
    /// "msg/s", "ms", "MiB", "µs/msg", "%".
    var unit: String
    /// The bare-SQL figure this one is compared to, and the ratio to it.
    var referenceKey: String? = nil
    var reference: Double? = nil
    var ratio: Double? = nil
    /// The target, in words ("≥ 80% of bare SQL", "< 5 ms"), and whether this run met it.
    var target: String? = nil
    var met: Bool? = nil

    /// A figure with a bare-SQL reference (when measured) and a minimum ratio to it.
    static func rate(_ scenario: String, _ measure: String, _ value: Double, against key: String?,
                     references: [String: Double], minimumRatio: Double? = nil, minimumRate: Double? = nil) -> BenchFigure {
        var figure = BenchFigure(scenario: scenario, measure: measure, value: value, unit: "msg/s")
        if let key, let bare = references[key], bare > 0 {
            figure.referenceKey = key
            figure.reference = bare
            figure.ratio = value / bare
        }
        var targets: [String] = []
        var met: [Bool] = []
        if let minimumRate {
            targets.append("≥ \(BenchTable.integer(minimumRate)) msg/s")
            met.append(value >= minimumRate)
        }
        if let minimumRatio {
            targets.append("≥ \(Int(minimumRatio * 100))% of bare")
            if let ratio = figure.ratio { met.append(ratio >= minimumRatio) }
        }
        if !targets.isEmpty {
            figure.target = targets.joined(separator: ", ")
            figure.met = met.isEmpty ? nil : !met.contains(false)
        }
        return figure
    }

    /// A figure with an upper bound ("< 5 ms").
    static func atMost(_ scenario: String, _ measure: String, _ value: Double, unit: String, limit: Double?) -> BenchFigure {
        var figure = BenchFigure(scenario: scenario, measure: measure, value: value, unit: unit)
        if let limit {
            figure.target = "< \(BenchTable.number(limit)) \(unit)"
            figure.met = value < limit
        }
        return figure
    }
}
