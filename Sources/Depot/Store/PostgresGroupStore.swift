import Foundation
import Postgres

/// The group store in `depot.message_groups` and `depot.group_messages` (migration 0014),
/// through the same `depot.group_*` functions that SQL users call, so both see one behaviour.
extension PostgresStore: MessageGroupStore {
    public func addToGroup(_ group: String, _ messages: [OutgoingMessage], whenComplete: CompletedGroupRule) async throws -> GroupAddResult {
        try GroupArgument.checkGroup(group)
        do {
            let rows = try await pool.query(Self.groupAdd(store: name, group: group, messages.withIds(), whenComplete: whenComplete))
            guard let row = rows.first else { throw PostgresError(kind: .decoding, message: "depot.group_add returned no row") }
            return GroupAddResult(metadata: try Self.groupMetadata(from: row), added: try row.decode("added"), refused: try row.decode("refused"))
        } catch let error as PostgresError where error.sqlState == .foreignKeyViolation {
            throw StoreError.undeclared(name)
        }
    }

    public func groupMetadata(_ group: String) async throws -> MessageGroupMetadata? {
        try GroupArgument.checkGroup(group)
        return try await pool.query("""
            SELECT \(unsafeRaw: Self.groupColumns) FROM depot.message_groups WHERE store = \(name) AND group_key = \(group)
            """).first.map(Self.groupMetadata(from:))
    }

    public func groupPage(_ group: String, after sequence: Int, limit: Int) async throws -> [GroupMessage] {
        try GroupArgument.checkGroup(group)
        try GroupArgument.checkPageSize(limit)
        return try await pool.query(Self.groupMessagePage(store: name, group: group, after: sequence, limit: limit))
            .map(Self.groupMessage(from:))
    }

    @discardableResult
    public func removeFromGroup(_ group: String, ids: [UUID]) async throws -> Int {
        try GroupArgument.checkGroup(group)
        guard !ids.isEmpty else { return 0 }
        return try await pool.query("SELECT depot.group_remove_messages(\(name), \(group), \(ids))").first?.decode(at: 0) ?? 0
    }

    @discardableResult
    public func removeGroup(_ group: String) async throws -> Bool {
        try GroupArgument.checkGroup(group)
        return try await pool.query("SELECT depot.group_remove(\(name), \(group))").first?.decode(at: 0) ?? false
    }

    @discardableResult
    public func setGroupCondition(_ group: String, to condition: String?) async throws -> Bool {
        try GroupArgument.checkGroup(group)
        return try await pool.query("SELECT depot.group_set_condition(\(name), \(group), \(condition))").first?.decode(at: 0) ?? false
    }

    @discardableResult
    public func completeGroup(_ group: String) async throws -> Bool {
        try GroupArgument.checkGroup(group)
        return try await pool.query("SELECT depot.group_complete(\(name), \(group))").first?.decode(at: 0) ?? false
    }

    @discardableResult
    public func setLastReleasedSequence(_ group: String, to sequence: Int) async throws -> Bool {
        try GroupArgument.checkGroup(group)
        try GroupArgument.checkLastReleased(sequence)
        return try await pool.query("SELECT depot.group_set_last_released(\(name), \(group), \(sequence))").first?.decode(at: 0) ?? false
    }

    public func groupCounts() async throws -> GroupCounts {
        let row = try await pool.query("SELECT groups, messages FROM depot.group_counts(\(name))").first
        return GroupCounts(groups: try row?.decode(at: 0) ?? 0, messages: try row?.decode(at: 1) ?? 0)
    }

    /// One transaction per expired group: the group's row is locked (SKIP LOCKED, so another
    /// node's reaper passes it by) through the callback, and removed in the same commit.
    @discardableResult
    public func expireGroups(olderThan timeout: Duration, age: GroupAge,
                             onExpired: @Sendable (MessageGroupMetadata) async throws -> Void) async throws -> Int {
        try GroupArgument.checkTimeout(timeout)
        var expired = 0
        while try await pool.withTransaction({ connection in
            guard let row = try await connection.query(Self.groupLockExpired(store: name, timeout: timeout, age: age)).first else { return false }
            let metadata = try Self.groupMetadata(from: row)
            try await onExpired(metadata)
            try await connection.query("DELETE FROM depot.message_groups WHERE store = \(name) AND group_key = \(metadata.group)")
            return true
        }) {
            expired += 1
        }
        return expired
    }

    public func pollFromGroup(_ group: String) async throws -> GroupMessage? {
        try GroupArgument.checkGroup(group)
        return try await pool.query("""
            SELECT \(unsafeRaw: Self.groupMessageColumns) FROM depot.group_poll(\(name), \(group))
            """).first.map(Self.groupMessage(from:))
    }

    // MARK: - Statements

    static let groupColumns = "group_key, size, condition, complete, last_released_sequence, created_at, updated_at"
    static let groupMessageColumns = "group_key, seq, id, payload, headers, content_type, created_at"

    /// Every message must have its id: the caller knows what it added, and a repeat adds nothing.
    static func groupAdd(store: String, group: String, _ messages: [OutgoingMessage], whenComplete: CompletedGroupRule) -> SQL {
        let ids = messages.map { $0.id! }
        let payloads = messages.map(\.payload)
        let headers = messages.map(\.headers)
        let contentTypes = messages.map(\.contentType)
        return """
            SELECT \(unsafeRaw: groupColumns), added, refused
            FROM depot.group_add(\(store), \(group), \(payloads), \(headers), \(contentTypes), \(ids), \(whenComplete.rawValue))
            """
    }

    /// A keyset page: the primary key (store, group_key, seq) reads it in order and stops at the
    /// limit, so each page costs the same however deep into the group it is.
    static func groupMessagePage(store: String, group: String, after sequence: Int, limit: Int) -> SQL {
        """
        SELECT \(unsafeRaw: groupMessageColumns) FROM depot.group_messages
        WHERE store = \(store) AND group_key = \(group) AND seq > \(sequence)
        ORDER BY seq LIMIT \(limit)
        """
    }

    /// The oldest expired group not held by anyone, locked for the caller's transaction.
    static func groupLockExpired(store: String, timeout: Duration, age: GroupAge) -> SQL {
        let clock = age == .sinceCreated ? "created_at" : "updated_at"
        return """
            SELECT \(unsafeRaw: groupColumns) FROM depot.message_groups
            WHERE store = \(store) AND \(unsafeRaw: clock) < now() - make_interval(secs => \(timeout.seconds))
            ORDER BY \(unsafeRaw: clock) LIMIT 1 FOR UPDATE SKIP LOCKED
            """
    }

    static func groupMetadata(from row: Row) throws -> MessageGroupMetadata {
        MessageGroupMetadata(
            group: try row.decode("group_key"),
            size: try row.decode("size"),
            condition: try row.decode("condition"),
            isComplete: try row.decode("complete"),
            lastReleasedSequence: try row.decode("last_released_sequence"),
            createdAt: try row.decode("created_at"),
            updatedAt: try row.decode("updated_at"))
    }

    static func groupMessage(from row: Row) throws -> GroupMessage {
        GroupMessage(
            id: try row.decode("id"),
            group: try row.decode("group_key"),
            payload: try row.decode("payload"),
            headers: try row.decode("headers"),
            contentType: try row.decode("content_type"),
            createdAt: try row.decode("created_at"),
            sequence: try row.decode("seq"))
    }
}
