/// When a member with no pacing may go to sleep, and for how long.
///
/// A store can look empty while a write into it is still on its way unannounced
/// (`MessageStore.hasUnannouncedWrites`); a member that slept on its idle poll then would leave
/// that write waiting for the poll. So a member sleeps only after a claim that found nothing and
/// that came after a look that found nothing unannounced:
///
/// - the first claim after a wake-up goes without looking, so a notification costs one claim;
/// - a claim that found nothing without a look first is followed by a look and another claim;
/// - a claim that found messages is followed by a look before the next claim, which may be the
///   one that finds the store empty;
/// - while something is unannounced the member looks and claims again after 2 ms, doubling up to
///   the idle poll, so a transaction left open in psql costs a few statements, not a busy loop.
///
/// For a store whose every write wakes its consumers (`looks` false) a claim that found nothing
/// is the last before sleeping, and the member never asks.
struct IdleLook {
    /// Whether the member asks the store before its next claim.
    private(set) var looksFirst = false
    private var lastRetry: Duration?
    let looks: Bool

    init(looks: Bool = true) { self.looks = looks }

    static let firstRetry = Duration.milliseconds(2)

    /// Call after each claim round with what it claimed and what the look before it found
    /// (false when there was no look); returns nil to claim again at once, or how long to wait.
    mutating func next(claimed: Int, unannounced: Bool, poll: Duration) -> Duration? {
        guard looks else { return claimed > 0 ? nil : poll }
        if claimed > 0 {
            looksFirst = true
            lastRetry = nil
            return nil
        }
        guard looksFirst else {
            looksFirst = true
            return nil
        }
        guard unannounced else {
            looksFirst = false
            lastRetry = nil
            return poll
        }
        let wait = min(poll, lastRetry.map { $0 * 2 } ?? Self.firstRetry)
        lastRetry = wait
        return wait
    }
}
