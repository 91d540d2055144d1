import Foundation

/// A Depot figure and its bare-SQL reference measured in alternating short rounds, judged by the
/// median of the pairs' ratios: for figures bound by the commit's fsync (one producer storing
/// one message at a time), whose speed here moves severalfold within minutes, so that one run of
/// each side, minutes apart, compares two different disks.
enum AlternatingPairs {
    struct Outcome {
        /// Medians of the Depot rounds and of the bare rounds, and of the ratios pair by pair.
        var depot: Double
        var bare: Double?
        var ratio: Double?
        var rounds: Int
    }

    /// Runs `rounds` pairs: bare SQL `key` for `seconds`, then `depot` (which measures for the
    /// same time and returns messages/s). Without references (`--reference-seconds 0`) only
    /// `depot` runs, once.
    static func measure(_ context: BenchContext, key: String, rounds: Int, seconds: Int,
                        depot: () async throws -> Double) async throws -> Outcome {
        guard context.references.seconds > 0 else { return Outcome(depot: try await depot(), bare: nil, ratio: nil, rounds: 1) }
        var depotRates: [Double] = [], bareRates: [Double] = [], ratios: [Double] = []
        for round in 1...rounds {
            context.progress("\(key): alternating pair \(round) of \(rounds), \(seconds) s each")
            let bare = try await BareSQLReference.run(databaseURL: context.databaseURL, seconds: seconds, keys: [key]) { _ in }
            guard let bareRate = bare.first?.messagesPerSecond, bareRate > 0 else { throw BenchFailure("bare SQL \(key) measured nothing") }
            let depotRate = try await depot()
            bareRates.append(bareRate)
            depotRates.append(depotRate)
            ratios.append(depotRate / bareRate)
        }
        return Outcome(depot: median(depotRates), bare: median(bareRates), ratio: median(ratios), rounds: rounds)
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

extension BenchFigure {
    /// A rate judged by alternating pairs: the Depot median, the bare median beside it, and the
    /// median of the pairs' ratios (not the ratio of the medians).
    static func paired(_ scenario: String, _ measure: String, _ outcome: AlternatingPairs.Outcome, against key: String,
                       minimumRatio: Double) -> BenchFigure {
        let label = outcome.rounds > 1 ? "\(measure) (median of \(outcome.rounds) alternating pairs)" : measure
        var figure = BenchFigure.rate(scenario, label, outcome.depot, against: key,
                                      references: outcome.bare.map { [key: $0] } ?? [:], minimumRatio: minimumRatio)
        if let ratio = outcome.ratio {
            figure.ratio = ratio
            figure.met = ratio >= minimumRatio
        }
        return figure
    }
}
