import Foundation
import Postgres
import Synchronization

/// Keeps the head of `depot.messages` clean while messages drain fast, by running VACUUM from
/// the node once enough acked rows have piled up.
///
/// An ack deletes rows, but their index entries stay at the head of `messages_claim_order` until
/// a vacuum removes them, and every claim starts its index scan there and walks past them.
/// Autovacuum visits a table at most once a minute (autovacuum_naptime) and runs throttled, so a
/// fast drain of a large backlog leaves hundreds of thousands behind, each claim walks past more
/// of them, and the drain slows as it goes (the README's Performance section has the figures).
///
/// A manual VACUUM runs unthrottled but only when dead rows pass `threshold(live:)`: an
/// enqueue-only load leaves none, so producers do not pay for it. SKIP_LOCKED: when another
/// node or autovacuum is already vacuuming the table, this one leaves it to them. PARALLEL 0:
/// a parallel vacuum puts its list of dead rows in a dynamic shared memory segment that it
/// sizes for the whole table (maintenance_work_mem, 64 MB by default) and fills with zeros
/// before it starts, which on a large table with few dead rows costs more than the vacuum.
final class MessageVacuum: Sendable {
    /// Fewest dead rows worth a vacuum.
    let minimumDeadRows: Int
    let pool: ConnectionPool
    let node: String
    /// Whether this role may vacuum the table, once asked.
    private let permitted = Mutex<Bool?>(nil)

    init(minimumDeadRows: Int, pool: ConnectionPool, node: String = "") {
        self.minimumDeadRows = minimumDeadRows
        self.pool = pool
        self.node = node
    }

    /// What one pass did.
    enum Outcome: Equatable, Sendable {
        case vacuumed
        case notDue
        /// This role may not vacuum the table: autovacuum alone cleans it (said once).
        case leftToAutovacuum
    }

    /// One pass of the node's vacuum service: asks once whether this role may vacuum, then
    /// vacuums when dead rows have passed the threshold.
    func runOnce() async throws -> Outcome {
        if permitted.withLock({ $0 }) == nil {
            let may = try await mayVacuum()
            permitted.withLock { $0 = may }
            if !may { NodeLog.info(node: node, "not vacuuming depot.messages: this role does not own it; autovacuum alone cleans it") }
        }
        guard permitted.withLock({ $0 }) == true else { return .leftToAutovacuum }
        return try await vacuumIfDue() ? .vacuumed : .notDue
    }

    /// How many dead rows start a vacuum: `minimumDeadRows`, or a twentieth of the live rows in a
    /// large table (a vacuum scans every index whole, so it costs more the larger the table).
    func threshold(live: Int) -> Int { max(minimumDeadRows, live / 20) }

    /// Whether this node's role may vacuum the table (its owner, the database's owner or a
    /// superuser); PostgreSQL only warns and skips otherwise.
    func mayVacuum() async throws -> Bool {
        try await pool.query("""
            SELECT pg_has_role(current_user, c.relowner, 'USAGE')
                OR pg_has_role(current_user, (SELECT d.datdba FROM pg_database d WHERE d.datname = current_database()), 'USAGE')
            FROM pg_class c WHERE c.oid = 'depot.messages'::regclass
            """).first?.decode(at: 0, as: Bool.self) ?? false
    }

    /// Dead and live rows as the statistics collector last heard (at most a second or so behind).
    func rows() async throws -> (dead: Int, live: Int) {
        guard let row = try await pool.query("""
            SELECT n_dead_tup, n_live_tup FROM pg_stat_user_tables WHERE relid = 'depot.messages'::regclass
            """).first else { return (0, 0) }
        return (try row.decode(at: 0), try row.decode(at: 1))
    }

    /// Vacuums the table when its dead rows have passed the threshold; returns whether it did.
    /// On a connection of its own: a vacuum of a large table takes seconds, and the pool's
    /// connections are the members'.
    @discardableResult
    func vacuumIfDue() async throws -> Bool {
        let (dead, live) = try await rows()
        guard dead >= threshold(live: live) else { return false }
        let connection = try await Connection.connect(pool.configuration)
        defer { connection.close() }
        try await connection.executeUnsafeScript("VACUUM (SKIP_LOCKED, PARALLEL 0) depot.messages")
        return true
    }
}
