import Foundation

/// Prints rows as an aligned table for people: a header, then one line a row.
func printTable(_ header: [String], _ rows: [[String]]) {
    let widths = header.indices.map { column in
        ([header[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0
    }
    func line(_ cells: [String]) -> String {
        zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }
            .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
    }
    print(line(header))
    rows.forEach { print(line($0)) }
}

/// Prints a value as JSON for scripts: sorted keys, snake_case names.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.keyEncodingStrategy = .convertToSnakeCase
    encoder.dateEncodingStrategy = .iso8601
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Text for one table cell: control characters (newlines, tabs) shown as "␤"-style escapes so a
/// row stays one line, and cut to `limit` characters with "…".
func cell(_ text: String?, limit: Int = 60) -> String {
    guard let text, !text.isEmpty else { return "-" }
    var out = ""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 32 || scalar.value == 127: out += String(format: "\\x%02x", scalar.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out.count > limit ? String(out.prefix(limit - 1)) + "…" : out
}

/// A moment for people: UTC, to the second (`2025-01-31 12:00:05`).
func timestamp(_ date: Date?) -> String {
    guard let date else { return "-" }
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
    return formatter.string(from: date)
}

/// How long ago `date` was, shortly: `850ms`, `4.2s`, `3m`, `5h`, `2d`.
func age(_ date: Date?, now: Date = Date()) -> String {
    guard let date else { return "-" }
    let seconds = max(0, now.timeIntervalSince(date))
    switch seconds {
    case ..<1: return "\(Int(seconds * 1000))ms"
    case ..<60: return String(format: "%.1fs", seconds)
    case ..<3600: return "\(Int(seconds / 60))m"
    case ..<86400: return "\(Int(seconds / 3600))h"
    default: return "\(Int(seconds / 86400))d"
    }
}

/// A count for people; "~" marks an estimate.
func quantity(_ value: Int, estimated: Bool) -> String { estimated ? "~\(value)" : String(value) }
