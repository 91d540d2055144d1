import Foundation

/// The figures of a chaos run as a table for people.
enum ChaosReportText {
    static func print(_ summary: ChaosSummary, stillWaiting: Int) {
        func seconds(_ value: Double?) -> String { value.map { String(format: "%.2f s", $0) } ?? "–" }
        let refused = summary.refused.sorted { $0.key < $1.key }.map { "\($0.value)×\($0.key)" }.joined(separator: ", ")
        let rows: [(String, String)] = [
            ("accepted (202 or receipt)", "\(summary.accepted) (held in a journal: \(summary.heldInJournal))"),
            ("lost", "\(summary.lost)\(summary.lostSample.isEmpty ? "" : " e.g. " + summary.lostSample.joined(separator: ", "))"),
            ("still waiting (PostgreSQL, journals)", "\(stillWaiting)"),
            ("duplicated deliveries", "\(summary.duplicated)"),
            ("delivered without a 202", "\(summary.deliveredWithout202)"),
            ("requests without an answer", "\(summary.unansweredRequests) (\(summary.unansweredMessages) messages)"),
            ("refused requests", refused.isEmpty ? "0" : refused),
            ("nodes killed (-9)", "\(summary.kills)"),
            ("PostgreSQL crashes", "\(summary.crashes)"),
            ("longest pause between deliveries", seconds(summary.longestPause)),
            ("slowest resume after PostgreSQL answered", seconds(summary.slowestResume)),
            ("202 → delivery p50 / p99 / max", "\(seconds(summary.latencyP50)) / \(seconds(summary.latencyP99)) / \(seconds(summary.latencyMax))"),
            ("… of those held in a journal, p99", seconds(summary.heldLatencyP99)),
        ]
        let width = rows.map(\.0.count).max() ?? 0
        for (name, value) in rows {
            Swift.print("\(name.padding(toLength: width, withPad: " ", startingAt: 0))  \(value)")
        }
    }
}
