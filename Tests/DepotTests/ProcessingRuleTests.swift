@testable import Depot
import DepotHTTP
import Foundation
import Testing

/// The rules that need no database: cron parsing and the failure policy.
@Suite("Processing rules")
struct ProcessingRuleTests {
    static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    static func date(_ year: Int, _ month: Int, _ day: Int, _ hour: Int = 0, _ minute: Int = 0, _ second: Int = 0) -> Date {
        utc.date(from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second))!
    }

    @Test("cron: next fire times for common expressions", arguments: [
        ("*/5 * * * *", date(2026, 11, 22, 10, 3, 7), date(2026, 11, 22, 10, 5)),
        ("0 9 * * 1-5", date(2026, 11, 21, 12), date(2026, 11, 23, 9)),       // Saturday → Monday 09:00
        ("30 2 1 * *", date(2026, 11, 22), date(2026, 12, 1, 2, 30)),
        ("0 0 1 1 *", date(2026, 11, 22), date(2027, 1, 1)),
        ("*/10 * * * * *", date(2026, 11, 22, 10, 0, 1), date(2026, 11, 22, 10, 0, 10)),
        ("0 0 12 ? * *", date(2026, 11, 22, 13), date(2026, 11, 23, 12)),      // Quartz style, seconds first
        ("5/15 * * * *", date(2026, 11, 22, 10, 21), date(2026, 11, 22, 10, 35)),
        ("0 0 * * 0", date(2026, 11, 22, 1), date(2026, 11, 29)),               // Sunday
    ])
    func nextFire(expression: String, after: Date, expected: Date) throws {
        #expect(try CronSchedule(expression).nextFire(after: after) == expected)
    }

    @Test("cron: malformed expressions name the field", arguments: [
        ("* * *", "3 fields"), ("61 * * * *", "minute"), ("* 24 * * *", "hour"), ("* * 0 * *", "day-of-month"),
        ("* * * 13 *", "month"), ("* * * * 8", "day-of-week"), ("5-1 * * * *", "backwards"), ("*/0 * * * *", "step"),
        ("a * * * *", "minute"),
    ])
    func malformed(expression: String, mention: String) {
        do {
            _ = try CronSchedule(expression)
            Issue.record("\(expression) parsed")
        } catch {
            #expect("\(error)".contains(mention), "\(expression): \(error)")
        }
    }

    @Test("cron that never fires (31 February) gives no time rather than looping")
    func neverFires() throws {
        #expect(try CronSchedule("0 0 31 2 *").nextFire(after: Self.date(2026, 1, 1)) == nil)
    }

    static func policy(max: Int, drop: Bool, failStore: String? = nil) -> FailurePolicy {
        var definition = ProcessorDefinition(name: "p", kind: .forwarding, store: "s")
        definition.maxDeliveryAttempts = max
        definition.maxDeliveryDrop = drop
        definition.failStore = failStore
        definition.retryIntervalMilliseconds = 250
        return FailurePolicy(definition: definition)
    }

    static let failed = DeliveryOutcome.failed(reason: "503", response: nil)

    @Test("failure policy: retry below the maximum, then drop, move (with or without drop) or deactivate")
    func failurePolicy() {
        #expect(Self.policy(max: 4, drop: false).action(after: Self.failed, attempts: 3) == .retry(after: .milliseconds(250)))
        if case .deactivate? = Self.policy(max: 4, drop: false).action(after: Self.failed, attempts: 4) {} else { Issue.record("attempt 4 of 4 must deactivate") }
        // Reactivated: a fresh round of attempts, then deactivate again.
        #expect(Self.policy(max: 4, drop: false).action(after: Self.failed, attempts: 5) == .retry(after: .milliseconds(250)))
        if case .deactivate? = Self.policy(max: 4, drop: false).action(after: Self.failed, attempts: 8) {} else { Issue.record("attempt 8 of 4 must deactivate") }
        if case .deadLetter? = Self.policy(max: 4, drop: true).action(after: Self.failed, attempts: 4) {} else { Issue.record("drop must dead-letter") }
        #expect(Self.policy(max: 4, drop: true, failStore: "f").action(after: Self.failed, attempts: 4) == .moveToFailStore("f"))
        // MI: a fail store without drop takes the message too, and the processor goes on.
        #expect(Self.policy(max: 4, drop: false, failStore: "f").action(after: Self.failed, attempts: 4) == .moveToFailStore("f"))
        #expect(Self.policy(max: 4, drop: false, failStore: "f").action(after: Self.failed, attempts: 3) == .retry(after: .milliseconds(250)))
        #expect(Self.policy(max: 0, drop: false).action(after: Self.failed, attempts: 1000) == .retry(after: .milliseconds(250)))
        #expect(Self.policy(max: -1, drop: true).action(after: Self.failed, attempts: 1000) == .retry(after: .milliseconds(250)))
        let rejected = DeliveryOutcome.rejected(reason: "no", response: HTTPResponse(status: 400))
        if case .deadLetter(let reason)? = Self.policy(max: 4, drop: false).action(after: rejected, attempts: 1) {
            #expect(reason.contains("400"))
        } else { Issue.record("a non-retry status must dead-letter at once") }
        #expect(Self.policy(max: 4, drop: false).action(after: .delivered(response: nil), attempts: 1) == nil)
    }
}
