import Depot
import Foundation

/// MI's `throttle` (on or off) and `throttle.interval` (milliseconds between two messages) → a
/// processor's `rate_limit` (messages per second, for every node and member together).
struct Throttle {
    private var enabled: Bool?
    private var intervalMilliseconds: Int?
    private var location: XMLSourceLocation?

    mutating func read(_ parameter: SynapseParameter, subject: String, into plan: inout ImportPlan) {
        location = parameter.location
        if parameter.name == "throttle" {
            enabled = Values.bool(parameter, subject, into: &plan)
        } else if let number = Values.int(parameter, subject, into: &plan) {
            guard number > 0 else {
                plan.errors.append(ImportNote(.error, parameter.location, subject, "throttle.interval must be a positive number of milliseconds, got \(number)"))
                return
            }
            intervalMilliseconds = number
        }
    }

    /// The rate, noted; nil when throttling is off or incomplete (noted too).
    func rateLimit(subject: String, location processorLocation: XMLSourceLocation, into plan: inout ImportPlan) -> Double? {
        switch (enabled, intervalMilliseconds) {
        case (true?, let interval?):
            let rate = 1000 / Double(interval)
            plan.notes.append(ImportNote(.note, location ?? processorLocation, subject,
                "throttle.interval \(interval) ms between messages is rate_limit \(rate) messages per second, held for every node and member together"))
            return rate
        case (true?, nil):
            plan.notes.append(ImportNote(.warning, location ?? processorLocation, subject, "throttle is on without throttle.interval; no rate_limit set"))
        case (false?, _?), (nil, _?):
            plan.notes.append(ImportNote(.note, location ?? processorLocation, subject, "throttle.interval is ignored: throttle is not on"))
        default:
            break
        }
        return nil
    }
}
