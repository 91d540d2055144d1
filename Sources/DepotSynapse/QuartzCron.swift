import Depot
import Foundation

/// Converts a Quartz cron expression (Synapse's `cronExpression`: seconds first, day-of-week 1 =
/// Sunday, names such as MON or JAN, an optional year) to Depot's cron (day-of-week 0 = Sunday).
/// What Depot cannot express (L, W, #, a year) is left as it is, and the database refuses it
/// naming the column.
enum QuartzCron {
    static let dayNames = ["SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6]
    static let monthNames = ["JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12]

    static func convert(_ quartz: String) -> (expression: String, note: String?) {
        var fields = quartz.split(whereSeparator: \.isWhitespace).map(String.init)
        guard fields.count == 6 || fields.count == 7 else {
            return (quartz, "\"\(quartz)\" is not a Quartz expression of 6 or 7 fields; written as a \(fields.count)-field cron")
        }
        var changes: [String] = []
        if fields.count == 7 {
            if fields[6] == "*" || fields[6] == "?" {
                fields.removeLast()
                changes.append("the year field \"*\" is dropped")
            } else {
                return (quartz, nil)
            }
        }
        let month = replaceNames(fields[4], monthNames, shift: 0)
        let day = replaceNames(fields[5], dayNames, shift: -1)
        if month != fields[4] { changes.append("month names become numbers") }
        if day != fields[5] { changes.append("day-of-week counts Sunday as 0, not 1 as Quartz does") }
        fields[4] = month
        fields[5] = day
        let converted = fields.joined(separator: " ")
        let note = "Quartz cronExpression \"\(quartz)\" → cron \"\(converted)\" (UTC)" + (changes.isEmpty ? "" : ": " + changes.joined(separator: "; "))
        return (converted, note)
    }

    /// Replaces names with numbers and shifts plain numbers by `shift` (Quartz's 1-7 days → 0-6).
    /// Steps (`/N`) are not shifted.
    private static func replaceNames(_ field: String, _ names: [String: Int], shift: Int) -> String {
        field.split(separator: ",", omittingEmptySubsequences: false).map { part -> String in
            let pieces = part.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            let range = pieces[0].split(separator: "-", omittingEmptySubsequences: false).map { bound -> String in
                if let number = names[bound.uppercased()] { return String(number) }
                if shift != 0, let number = Int(bound) { return String(number + shift) }
                return String(bound)
            }.joined(separator: "-")
            return pieces.count == 2 ? "\(range)/\(pieces[1])" : range
        }.joined(separator: ",")
    }
}
