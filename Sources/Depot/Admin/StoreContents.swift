import Foundation
import Postgres

/// One message as `depot.peek` shows it: where it stands and the start of its payload.
public struct PeekedMessage: Sendable, Equatable, Codable {
    public var id: UUID
    /// `ready`, `delayed` (available later) or `in_flight` (leased to a consumer).
    public var state: String
    public var priority: Int
    public var attempts: Int
    public var createdAt: Date
    public var availableAt: Date
    public var contentType: String?
    public var groupKey: String?
    public var headers: [String: String]
    /// The first 200 bytes as text; escaped (`\ooo`) when they are not UTF-8; "…" when cut.
    public var preview: String
}

extension StoreCatalog {
    /// The next `limit` messages of `store` in delivery order, without claiming them (`depot.peek`).
    /// Throws `AdminError.notFound` for an undeclared store, `.invalidArgument` for a limit outside 1…10000.
    public func peek(_ store: String, limit: Int = 10) async throws -> [PeekedMessage] {
        try await AdminError.translating {
            try await pool.query("""
                SELECT id, state, priority, attempts, created_at, available_at, content_type, group_key, headers, preview
                FROM depot.peek(\(store), \(Int32(clamping: limit)))
                """).map { row in
                let (id, state, priority, attempts, created, available, type, group, headers, preview) =
                    try row.decode((UUID, String, Int, Int, Date, Date, String?, String?, [String: String], String).self)
                return PeekedMessage(id: id, state: state, priority: priority, attempts: attempts, createdAt: created,
                                     availableAt: available, contentType: type, groupKey: group, headers: headers, preview: preview)
            }
        }
    }

    /// Deletes every message of `store`, in flight or not (`depot.purge_store`); returns how many.
    /// Its dead letters stay. Throws `AdminError.notFound` for an undeclared store.
    @discardableResult
    public func purge(_ store: String) async throws -> Int {
        try await AdminError.translating {
            try await pool.query("SELECT depot.purge_store(\(store))").first?.decode(at: 0) ?? 0
        }
    }
}
