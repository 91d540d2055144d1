/// How long to wait before trying again after consecutive failures: `first`, doubling up to
/// `limit`. One formula for every loop of a node that retries the database, so that all of them
/// are back within `limit` of the database answering again.
struct Backoff: Sendable {
    let first: Duration
    let limit: Duration
    /// Failures since the last success.
    private(set) var failures = 0

    /// Defaults: 100 ms, doubling to 1 s; a node polls a database that is down at most once a
    /// second per loop, and is back within a second of it answering.
    init(first: Duration = .milliseconds(100), limit: Duration = .seconds(1)) {
        self.first = first
        self.limit = limit
    }

    /// Counts a failure and returns the wait before the next try.
    mutating func failed() -> Duration {
        failures += 1
        let doubled = first * (1 << min(failures - 1, 20))
        return min(doubled, limit)
    }

    /// Forgets the failures after a success.
    mutating func succeeded() { failures = 0 }
}
