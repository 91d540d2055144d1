import Foundation

/// What happens to a message after an attempt that did not deliver it.
enum FailureAction: Sendable, Equatable {
    /// Claimable again after the retry interval.
    case retry(after: Duration)
    /// Out of line into `depot.dead_letters` (or the store's dead letters).
    case deadLetter(reason: String)
    /// Out of line into the processor's `fail_store`.
    case moveToFailStore(String)
    /// Stop the processor on every node; the message stays first in line.
    case deactivate(reason: String)
}

/// A processor's rules for failed attempts: `max_delivery_attempts`, `max_delivery_drop`,
/// `fail_store`, `non_retry_status_codes` and `retry_interval_ms`, as Synapse applies them.
struct FailurePolicy: Sendable {
    let definition: ProcessorDefinition

    /// The action for a message whose attempt `attempts` (counting this one) ended in `outcome`.
    ///
    /// With `fail_store`, a message that used its attempts moves there (drop or not). Without
    /// drop and without a fail store, each activation gives a message `max_delivery_attempts` attempts: the
    /// processor deactivates when a message's attempts reach a multiple of it, so an operator who
    /// reactivates it gets a fresh round (Synapse resets its counter on reactivation too).
    func action(after outcome: DeliveryOutcome, attempts: Int) -> FailureAction? {
        let reason: String
        switch outcome {
        case .delivered:
            return nil
        case .rejected(let why, let response?):
            return .deadLetter(reason: "non-retry status \(response.status): \(why)")
        case .rejected(let why, nil):
            return .deadLetter(reason: "undeliverable: \(why)")
        case .failed(let why, _):
            reason = why
        }
        let maximum = definition.maxDeliveryAttempts
        let retry = FailureAction.retry(after: .milliseconds(definition.retryIntervalMilliseconds))
        guard maximum > 0, attempts >= maximum else { return retry }
        // With a fail store the message moves there and the processor goes on, drop or not: WSO2
        // MI's store-and-forward with a failMessagesStore and max.delivery.drop Disabled.
        if let failStore = definition.failStore { return .moveToFailStore(failStore) }
        if definition.maxDeliveryDrop {
            return .deadLetter(reason: "max delivery attempts (\(maximum)) reached: \(reason)")
        }
        guard attempts % maximum == 0 else { return retry }
        return .deactivate(reason: "a message failed \(maximum) delivery attempts (max_delivery_drop is false): \(reason)")
    }
}
