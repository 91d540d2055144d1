import Foundation

/// What one `depot bench` run prints: where it ran, the bare-SQL reference, and every figure.
struct BenchReport: Sendable, Codable {
    var date: Date
    var machine: String
    var postgres: String
    var settings: [String: String]
    var quick: Bool
    var references: [ReferenceFigure]
    var figures: [BenchFigure]
}

/// Renders numbers and the report for people.
enum BenchTable {
    static func integer(_ value: Double) -> String {
        let formatter = NumberFormatter()
        formatter.numberStyle = .decimal
        formatter.maximumFractionDigits = 0
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.groupingSeparator = ","
        formatter.usesGroupingSeparator = true
        return formatter.string(from: NSNumber(value: value.rounded())) ?? String(Int(value))
    }

    /// Big numbers grouped and whole, small ones with up to two decimals.
    static func number(_ value: Double) -> String {
        abs(value) >= 100 ? integer(value) : String(format: value == value.rounded() ? "%.0f" : "%.2f", value)
    }

    static func print(_ report: BenchReport) {
        Swift.print("Depot benchmark, \(timestamp(report.date)) UTC\(report.quick ? " (--quick)" : "")")
        Swift.print("machine:    \(report.machine)")
        Swift.print("postgres:   \(report.postgres)")
        Swift.print("settings:   " + report.settings.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        if !report.references.isEmpty {
            Swift.print("\nBare SQL reference (pgbench, same database):")
            printTable(["key", "what", "msg/s"], report.references.map { [$0.key, $0.description, integer($0.messagesPerSecond)] })
        }
        Swift.print("")
        printTable(["scenario", "measure", "value", "unit", "bare SQL", "ratio", "target", "met"], report.figures.map { figure in
            [figure.scenario, figure.measure, number(figure.value), figure.unit,
             figure.reference.map { "\(integer($0)) (\(figure.referenceKey ?? ""))" } ?? "-",
             figure.ratio.map { "\(Int(($0 * 100).rounded()))%" } ?? "-",
             figure.target ?? "-",
             figure.met.map { $0 ? "yes" : "NO" } ?? "-"]
        })
    }
}
