import Foundation
import Postgres

/// One row of `depot.dead_letters`, without its payload.
public struct DeadLetterSummary: Sendable, Equatable, Codable {
    public var id: UUID
    public var store: String
    public var reason: String
    /// The HTTP status that condemned it, if one did.
    public var statusCode: Int?
    public var lastError: String?
    public var processor: String?
    public var node: String?
    public var attempts: Int
    public var deadAt: Date
}

/// Lists, resends and purges dead letters, by store and/or id: every statement on `depot.dead_letters`.
/// A nil `store` means every store; empty `ids` means every dead letter (of that store).
public struct DeadLetterAdmin: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) { self.pool = pool }

    /// The newest dead letters first, at most `limit` (default 100).
    public func list(store: String? = nil, ids: [UUID] = [], limit: Int = 100) async throws -> [DeadLetterSummary] {
        guard limit >= 1 else { throw AdminError(.invalidArgument, "limit must be at least 1, got \(limit)") }
        let idFilter: [UUID]? = ids.isEmpty ? nil : ids
        return try await AdminError.translating {
            if let store { try await pool.query("SELECT depot.require_store(\(store))") }
            // Why two statements: "store = $1" (not "$1 IS NULL OR store = $1") lets the planner walk
            // dead_letters_store, or dead_letters_dead_at for every store, newest first, and stop at the limit.
            let rows = if let store {
                try await pool.query("""
                    SELECT \(unsafeRaw: Self.summaryColumns) FROM depot.dead_letters
                    WHERE store = \(store) AND (\(idFilter)::uuid[] IS NULL OR id = ANY(\(idFilter)))
                    ORDER BY dead_at DESC, id LIMIT \(limit)
                    """)
            } else {
                try await pool.query("""
                    SELECT \(unsafeRaw: Self.summaryColumns) FROM depot.dead_letters
                    WHERE \(idFilter)::uuid[] IS NULL OR id = ANY(\(idFilter))
                    ORDER BY dead_at DESC, id LIMIT \(limit)
                    """)
            }
            return try rows.map { row in
                let (id, store, reason, status, error, processor, node, attempts, deadAt) =
                    try row.decode((UUID, String, String, Int?, String?, String?, String?, Int, Date).self)
                return DeadLetterSummary(id: id, store: store, reason: reason, statusCode: status, lastError: error,
                                         processor: processor, node: node, attempts: attempts, deadAt: deadAt)
            }
        }
    }

    static let summaryColumns = "id, store, reason, status_code, last_error, processor, node, attempts, dead_at"

    /// Moves the chosen dead letters back into their stores (same id, attempts 0, after what
    /// waits) with `depot.resend_dead_letters`; returns how many went back.
    @discardableResult
    public func resend(store: String? = nil, ids: [UUID] = []) async throws -> Int {
        let idFilter: [UUID]? = ids.isEmpty ? nil : ids
        return try await AdminError.translating {
            try await pool.query("SELECT depot.resend_dead_letters(\(store), \(idFilter))").first?.decode(at: 0) ?? 0
        }
    }

    /// Deletes the chosen dead letters for good with `depot.purge_dead_letters`; returns how many.
    @discardableResult
    public func purge(store: String? = nil, ids: [UUID] = []) async throws -> Int {
        let idFilter: [UUID]? = ids.isEmpty ? nil : ids
        return try await AdminError.translating {
            try await pool.query("SELECT depot.purge_dead_letters(\(store), \(idFilter))").first?.decode(at: 0) ?? 0
        }
    }
}
