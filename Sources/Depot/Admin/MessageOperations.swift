import Foundation
import Postgres

/// One message as `depot.browse` shows it, with the cursor that starts the next page after it.
public struct BrowsedMessage: Sendable, Equatable, Codable {
    /// Pass the last row's cursor as `after` for the next page.
    public var cursor: String
    public var id: UUID
    /// `ready`, `delayed` or `in_flight`.
    public var state: String
    public var priority: Int
    public var attempts: Int
    public var createdAt: Date
    public var availableAt: Date
    /// The consumer holding it, while in flight.
    public var lockedBy: String?
    public var contentType: String?
    public var groupKey: String?
    public var headers: [String: String]
    public var preview: String
}

/// What an operator does to single messages (migration 0016): browse a store page by page, and
/// delete, retry now or move messages by id. A message being delivered is refused unless `force`.
public struct MessageOperations: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) { self.pool = pool }

    /// A page of `store` in delivery order, optionally only messages in `state` whose headers
    /// contain `headers`, starting after `cursor`.
    public func browse(_ store: String, state: String? = nil, headers: [String: String]? = nil,
                       after cursor: String? = nil, limit: Int = 100) async throws -> [BrowsedMessage] {
        try await AdminError.translating {
            let filter = try headers.map { try JSONB(encoding: $0) }
            return try await pool.query("""
                SELECT cursor, id, state, priority, attempts, created_at, available_at, locked_by, content_type, group_key, headers, preview
                FROM depot.browse(\(store), \(state), \(filter), \(cursor), \(Int32(clamping: limit)))
                """).map { row in
                BrowsedMessage(cursor: try row.decode("cursor"), id: try row.decode("id"), state: try row.decode("state"),
                               priority: try row.decode("priority"), attempts: try row.decode("attempts"),
                               createdAt: try row.decode("created_at"), availableAt: try row.decode("available_at"),
                               lockedBy: try row.decode("locked_by"), contentType: try row.decode("content_type"),
                               groupKey: try row.decode("group_key"), headers: try row.decode("headers"), preview: try row.decode("preview"))
            }
        }
    }

    /// Deletes messages for good; returns how many. All or none.
    @discardableResult
    public func delete(_ ids: [UUID], force: Bool = false) async throws -> Int {
        try await count("SELECT depot.delete_messages(\(ids), \(force))")
    }

    /// Makes messages claimable now with their attempts reset; returns how many. All or none.
    @discardableResult
    public func retryNow(_ ids: [UUID], force: Bool = false) async throws -> Int {
        try await count("SELECT depot.retry_now(\(ids), \(force))")
    }

    /// Moves messages into `store` under their ids, ready now; returns how many. All or none.
    @discardableResult
    public func move(_ ids: [UUID], to store: String, force: Bool = false) async throws -> Int {
        try await count("SELECT depot.move_messages(\(ids), \(store), \(force))")
    }

    private func count(_ statement: SQL) async throws -> Int {
        try await AdminError.translating { try await pool.query(statement).first?.decode(at: 0, as: Int.self) ?? 0 }
    }
}
