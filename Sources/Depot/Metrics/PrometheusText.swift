import Foundation

/// Writes the Prometheus text exposition format (version 0.0.4): `# HELP`, `# TYPE`, then one
/// `name{label="value"} number` line per sample, label values escaped.
struct PrometheusText {
    private(set) var text = ""
    private var declared: Set<String> = []

    /// Declares a metric family once; later calls for the same name do nothing.
    mutating func family(_ name: String, type: String, help: String) {
        guard declared.insert(name).inserted else { return }
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        text += name
        if !labels.isEmpty {
            text += "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        }
        text += " " + Self.format(value) + "\n"
    }

    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    static func format(_ value: Double) -> String {
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value.isNaN { return "NaN" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}
