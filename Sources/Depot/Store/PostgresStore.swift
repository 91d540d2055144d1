import Foundation
import Postgres

/// A store whose messages live in `depot.messages`, shared by every node on the database.
///
/// Claims use `FOR UPDATE SKIP LOCKED`, so any number of consumers on any number of
/// connections take disjoint messages without waiting on each other.
public struct PostgresStore: MessageStore {
    public let name: String
    let pool: ConnectionPool

    /// A handle on the store `name`; it must have a row in `depot.stores` before messages go in.
    public init(name: String, pool: ConnectionPool) {
        self.name = name
        self.pool = pool
    }

    public func store(_ message: OutgoingMessage) async throws -> StoreReceipt {
        try await store([message])[0]
    }

    public func store(_ messages: [OutgoingMessage]) async throws -> [StoreReceipt] {
        guard !messages.isEmpty else { return [] }
        return try await pool.withConnection { connection in
            guard Self.canInsertDirectly(messages), !DirectInsertRefusals.contains(pool) else {
                return try await store(messages, on: connection)
            }
            return try await insertDirectly(messages, on: connection)
        }
    }

    /// Messages without idempotency or group keys (most of them) need none of store_batch's
    /// checks: one plain INSERT of them all, ids made here for those without, no RETURNING.
    /// A role without INSERT on `depot.messages` (a `depot_producer` member) is refused it and
    /// stores through store_batch from then on (`DirectInsertRefusals`).
    static func canInsertDirectly(_ messages: [OutgoingMessage]) -> Bool {
        messages.allSatisfy { $0.idempotencyKey == nil && $0.groupKey == nil }
    }

    /// The plain INSERT behind `store(_:)`. An id that is already stored (a producer's retry of
    /// a write that committed late) fails the whole statement, and then the batch goes again
    /// through store_batch, which stores the others and answers created = false for it. Runs
    /// outside any transaction, so the failed statement leaves nothing behind.
    private func insertDirectly(_ messages: [OutgoingMessage], on connection: Connection) async throws -> [StoreReceipt] {
        let withIds = messages.withIds()
        do {
            if Self.canCopy(withIds) {
                try await connection.copy(Self.messageCopy, rows: Self.messageCopyRows(store: name, withIds))
            } else {
                try await connection.execute(Self.messageInsert(store: name, withIds))
            }
            return withIds.map { StoreReceipt(id: $0.id!, created: true) }
        } catch let error as PostgresError where error.sqlState == .uniqueViolation {
            return try await store(withIds, on: connection)
        } catch let error as PostgresError where error.sqlState == .insufficientPrivilege {
            DirectInsertRefusals.insert(pool)
            return try await store(withIds, on: connection)
        } catch let error as PostgresError where error.sqlState == .foreignKeyViolation {
            throw StoreError.undeclared(name)  // depot.hold_store, from the insert trigger
        }
    }

    /// Stores messages on the caller's connection, inside whatever transaction it has open:
    /// commit and they exist, roll back and they never did.
    public func store(_ messages: [OutgoingMessage], on connection: Connection) async throws -> [StoreReceipt] {
        guard !messages.isEmpty else { return [] }
        do {
            let rows = try await connection.query(Self.messageStoreBatch(store: name, messages))
            return try rows.map { StoreReceipt(id: try $0.decode(at: 0), created: try $0.decode(at: 1)) }
        } catch let error as PostgresError where error.sqlState == .undefinedObject {
            throw StoreError.undeclared(name)
        } catch let error as PostgresError where error.sqlState == .storeNotAllowed {
            throw StoreError(.notAllowed, error.message, hint: error.hint)
        }
    }

    public func claim(limit: Int, consumer: String, lease: Duration) async throws -> [Message] {
        try StoreError.checkLimit(limit)
        let statement = Self.messageClaim(store: name, limit: limit, consumer: consumer, lease: lease)
        let rows = try await pool.withConnection { try await ClaimPlan.run(statement, on: $0) }
        // RETURNING has no order; hand them out in delivery order.
        return try rows.map(Self.message(from:)).sorted(by: Self.deliveryOrder)
    }

    public func claimHead(consumer: String, lease: Duration) async throws -> Message? {
        let statement = Self.messageClaimHead(store: name, consumer: consumer, lease: lease)
        return try await pool.withConnection { try await ClaimPlan.run(statement, on: $0) }.map(Self.message(from:)).first
    }

    /// One statement, one commit: the ack's DELETE and the next claim share a transaction.
    /// Both claims run through `ClaimPlan`, which keeps their plan on the claim index.
    public func ackAndClaim(_ ids: [UUID], limit: Int, consumer: String, lease: Duration) async throws -> [Message] {
        try StoreError.checkLimit(limit)
        let statement = Self.messageClaim(store: name, limit: limit, consumer: consumer, lease: lease, acking: ids)
        let rows = try await pool.withConnection { try await ClaimPlan.run(statement, on: $0) }
        return try rows.map(Self.message(from:)).sorted(by: Self.deliveryOrder)
    }

    @discardableResult
    public func ack(_ ids: [UUID], consumer: String) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try await pool.query(Self.messageAck(ids, consumer: consumer)).affectedRows
    }

    @discardableResult
    public func release(_ id: UUID, consumer: String, retryAt: Date, error: String?) async throws -> Bool {
        try await pool.query(Self.messageRelease(id, consumer: consumer, retryAt: retryAt, error: error)).affectedRows == 1
    }

    @discardableResult
    public func giveBack(_ ids: [UUID], consumer: String) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try await pool.query(Self.messageGiveBack(ids, consumer: consumer)).affectedRows
    }

    @discardableResult
    public func extendLeases(_ ids: [UUID], consumer: String, lease: Duration) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try await pool.query(Self.messageExtendLeases(ids, consumer: consumer, lease: lease)).affectedRows
    }

    @discardableResult
    public func deadLetter(_ id: UUID, consumer: String, reason: DeadLetterReason) async throws -> Bool {
        try await pool.query(Self.messageDeadLetter(id, consumer: consumer, reason: reason)).affectedRows == 1
    }

    /// Within one database the row changes store in place, in one statement; elsewhere it is copied.
    @discardableResult
    public func move(_ message: Message, consumer: String, to target: any MessageStore) async throws -> Bool {
        // Same database (any pool on it): copying would collide with the source row itself.
        guard let target = target as? PostgresStore,
              target.pool === pool || target.pool.configuration.connectionString == pool.configuration.connectionString else {
            return try await moveByCopying(message, consumer: consumer, to: target)
        }
        guard target.name != name else {
            throw StoreError(.invalidArgument, "cannot move message \(message.id) from store \"\(name)\" into itself")
        }
        do {
            let rows = try await pool.query(Self.messageMove(message.id, consumer: consumer, to: target.name))
            return try rows.first?.decode(at: 1, as: Bool.self) ?? false
        } catch let error as PostgresError where error.sqlState == .foreignKeyViolation {
            throw StoreError.undeclared(target.name)
        }
    }

    public var mayHaveUnannouncedWrites: Bool { true }

    /// An insert that skipped its NOTIFY holds a shared lock until it ends (migration 0008).
    public func hasUnannouncedWrites() async throws -> Bool {
        try await pool.query("SELECT depot.has_unannounced_inserts(\(name))").first?.decode(at: 0, as: Bool.self) ?? false
    }

    public func counts() async throws -> StoreCounts {
        let rows = try await pool.query("""
            SELECT ready, delayed, in_flight, dead_letters FROM depot.store_stats WHERE store = \(name)
            """)
        guard let row = rows.first else { throw StoreError.undeclared(name) }
        let (ready, delayed, inFlight, dead) = try row.decode((Int, Int, Int, Int).self)
        return StoreCounts(ready: ready, delayed: delayed, inFlight: inFlight, deadLetters: dead)
    }

    public func peek(limit: Int) async throws -> [Message] {
        try StoreError.checkLimit(limit)
        let rows = try await pool.query(Self.messagePeek(store: name, limit: limit))
        return try rows.map(Self.message(from:))
    }

    @discardableResult
    public func purge() async throws -> Int {
        try await pool.query(Self.messagePurge(store: name)).affectedRows
    }
}
