import Postgres

/// A processor's `rate_limit`, held for every node and member together by a token bucket row in
/// the database (migration 0012): a member takes tokens before it claims and claims no more than
/// it was given, and gives back what the store could not fill.
struct ClusterPace: Sendable {
    let processor: String
    let pool: ConnectionPool

    /// Waits until the bucket grants at least one message and returns how many (at most
    /// `wanted`); 0 once `stopped` says so. `sleep` waits and returns early on a stop.
    func take(_ wanted: Int, stopped: @Sendable () -> Bool, sleep: @Sendable (Duration) async -> Void) async throws -> Int {
        while !stopped() {
            guard let row = try await pool.query("SELECT granted, wait_ms FROM depot.take_pace(\(processor), \(Int32(clamping: wanted)))").first else {
                return wanted
            }
            let (granted, waitMilliseconds) = try row.decode((Int, Int).self)
            if granted > 0 { return granted }
            // Members of every node wait about as long; a little spread keeps them from queueing
            // on the bucket's row at the same instant.
            await sleep(.milliseconds(waitMilliseconds + Int.random(in: 0...max(1, waitMilliseconds / 4))))
        }
        return 0
    }

    /// Returns tokens granted but not used.
    func giveBack(_ unused: Int) async throws {
        guard unused > 0 else { return }
        try await pool.query("SELECT depot.return_pace(\(processor), \(Int32(clamping: unused)))")
    }
}
