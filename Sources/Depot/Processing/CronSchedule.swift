import Foundation

/// A cron expression: five fields (minute hour day-of-month month day-of-week) or six with
/// seconds first, as Quartz writes them. Fields take `*`, `?`, `N`, `N-M`, lists, and `/STEP`.
/// Times are UTC; day-of-week 0 and 7 are Sunday. `depot.cron_problem` checks the same grammar
/// in SQL, so a row that parses there parses here.
public struct CronSchedule: Sendable, Equatable {
    let seconds: Set<Int>
    let minutes: Set<Int>
    let hours: Set<Int>
    let daysOfMonth: Set<Int>
    let months: Set<Int>
    let daysOfWeek: Set<Int>
    /// Whether day-of-month / day-of-week were restricted (not `*` or `?`): cron's either-matches rule.
    let restrictsDayOfMonth: Bool
    let restrictsDayOfWeek: Bool

    /// Parses `expression`; throws a `StoreError` saying which field is wrong.
    public init(_ expression: String) throws {
        let fields = expression.split(whereSeparator: \.isWhitespace).map(String.init)
        guard fields.count == 5 || fields.count == 6 else {
            throw StoreError(.invalidArgument, "cron \"\(expression)\" has \(fields.count) fields; write 5 (minute hour day month weekday) or 6 (second first)")
        }
        let offset = fields.count == 6 ? 1 : 0
        seconds = offset == 1 ? try Self.parse(fields[0], name: "second", 0...59) : [0]
        minutes = try Self.parse(fields[offset], name: "minute", 0...59)
        hours = try Self.parse(fields[offset + 1], name: "hour", 0...23)
        daysOfMonth = try Self.parse(fields[offset + 2], name: "day-of-month", 1...31)
        months = try Self.parse(fields[offset + 3], name: "month", 1...12)
        daysOfWeek = Set(try Self.parse(fields[offset + 4], name: "day-of-week", 0...7).map { $0 % 7 })
        restrictsDayOfMonth = !["*", "?"].contains(fields[offset + 2])
        restrictsDayOfWeek = !["*", "?"].contains(fields[offset + 4])
    }

    /// The first fire time strictly after `date`; nil if none within five years (31 February).
    public func nextFire(after date: Date) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var time = Date(timeIntervalSince1970: (date.timeIntervalSince1970 + 1).rounded(.down))
        let limit = date.addingTimeInterval(5 * 366 * 86400)
        while time < limit {
            let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: time)
            let (month, day, hour, minute, second) = (parts.month!, parts.day!, parts.hour!, parts.minute!, parts.second!)
            if !months.contains(month) {
                time = calendar.date(from: DateComponents(year: parts.year, month: month + 1, day: 1))!
            } else if !dayMatches(day: day, weekday: parts.weekday! - 1) {
                time = calendar.date(from: DateComponents(year: parts.year, month: month, day: day + 1))!
            } else if !hours.contains(hour) {
                time = calendar.date(from: DateComponents(year: parts.year, month: month, day: day, hour: hour + 1))!
            } else if !minutes.contains(minute) {
                time = calendar.date(from: DateComponents(year: parts.year, month: month, day: day, hour: hour, minute: minute + 1))!
            } else if !seconds.contains(second) {
                time = time.addingTimeInterval(1)
            } else {
                return time
            }
        }
        return nil
    }

    private func dayMatches(day: Int, weekday: Int) -> Bool {
        switch (restrictsDayOfMonth, restrictsDayOfWeek) {
        case (true, true): daysOfMonth.contains(day) || daysOfWeek.contains(weekday)
        case (true, false): daysOfMonth.contains(day)
        case (false, true): daysOfWeek.contains(weekday)
        case (false, false): true
        }
    }

    private static func parse(_ field: String, name: String, _ range: ClosedRange<Int>) throws -> Set<Int> {
        var values = Set<Int>()
        for part in field.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw problem(field, name, "has more than one /") }
            var step = 1
            if pieces.count == 2 {
                guard let parsed = Int(pieces[1]), parsed > 0 else { throw problem(field, name, "has a step that is not a positive number") }
                step = parsed
            }
            var low = range.lowerBound, high = range.upperBound
            if pieces[0] != "*" && pieces[0] != "?" {
                let bounds = pieces[0].split(separator: "-", omittingEmptySubsequences: false)
                guard bounds.count <= 2, let first = Int(bounds[0]), let last = Int(bounds.last!) else {
                    throw problem(field, name, "is not *, ?, N, N-M or a list of them with an optional /STEP")
                }
                guard range.contains(first), range.contains(last) else { throw problem(field, name, "is outside \(range.lowerBound)-\(range.upperBound)") }
                guard first <= last else { throw problem(field, name, "is a range that runs backwards") }
                low = first
                high = bounds.count == 2 || pieces.count == 2 ? last : first
                if bounds.count == 1 && pieces.count == 2 { high = range.upperBound }  // "5/15": from 5, every 15
            }
            values.formUnion(stride(from: low, through: high, by: step))
        }
        return values
    }

    private static func problem(_ field: String, _ name: String, _ what: String) -> StoreError {
        StoreError(.invalidArgument, "cron \(name) field \"\(field)\" \(what)")
    }
}
