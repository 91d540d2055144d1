import Foundation
import Postgres

/// Whether the node can reach its database, asked at most once a second however often
/// `/healthz` and `/metrics` are scraped.
final class HealthCheck: @unchecked Sendable {
    private let pool: ConnectionPool
    private let timeout: Duration
    private let lock = NSLock()
    private var last: (at: ContinuousClock.Instant, problem: String?)?

    /// - Parameter timeout: a database slower than this to answer `SELECT 1` counts as down. Default 2 s.
    init(pool: ConnectionPool, timeout: Duration = .seconds(2)) {
        self.pool = pool
        self.timeout = timeout
    }

    /// Nil when the database answered, else why not.
    func problem() async -> String? {
        if let last = lock.withLock({ last }), ContinuousClock.now - last.at < .seconds(1) { return last.problem }
        let pool = self.pool
        var problem: String?
        do {
            _ = try await withDeadline(timeout) { try await pool.query("SELECT 1") }
        } catch {
            problem = "database unreachable: \(error)"
        }
        lock.withLock { last = (.now, problem) }
        return problem
    }
}
