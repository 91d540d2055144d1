import Foundation

/// A named place messages wait until exactly one consumer takes them.
///
/// Claims are leases: a claimed message is hidden from other consumers until the consumer acks
/// it (it is gone), releases it (it comes back at a given time), dead-letters it, or the lease
/// runs out (it comes back by itself, its attempt counted). Ordering: higher priority first,
/// then arrival order; messages sharing a group key go out one at a time, in arrival order,
/// across all consumers.
///
/// `PostgresStore`, `MemoryStore` and `JournalStore` conform; a store of your own can run `DepotConformance`.
public protocol MessageStore: Sendable {
    /// The store's name.
    var name: String { get }

    /// Stores one message.
    func store(_ message: OutgoingMessage) async throws -> StoreReceipt

    /// Stores many messages in one round trip, all or none. Receipts are in input order.
    func store(_ messages: [OutgoingMessage]) async throws -> [StoreReceipt]

    /// Leases up to `limit` ready messages to `consumer` for `lease`; each claim counts an attempt.
    func claim(limit: Int, consumer: String, lease: Duration) async throws -> [Message]

    /// Removes messages `consumer` holds a lease on; returns how many were removed.
    /// A message whose lease expired and went to another consumer is not removed.
    @discardableResult
    func ack(_ ids: [UUID], consumer: String) async throws -> Int

    /// Gives a leased message back, claimable again at `retryAt`; records `error` if given.
    /// Returns false when `consumer` no longer holds the lease.
    @discardableResult
    func release(_ id: UUID, consumer: String, retryAt: Date, error: String?) async throws -> Bool

    /// Leases the store's head message (first in delivery order) to `consumer`, but only when it
    /// is due and no one holds it; otherwise none. An in-order processor's claim: a head waiting
    /// for its retry, or in flight elsewhere, holds back every message behind it.
    func claimHead(consumer: String, lease: Duration) async throws -> Message?

    /// Acks `ids` and leases up to `limit` more, as one step where the store can: a member that
    /// finished a batch and wants the next pays one round trip and one commit instead of two.
    /// The acked messages are never among those claimed.
    func ackAndClaim(_ ids: [UUID], limit: Int, consumer: String, lease: Duration) async throws -> [Message]

    /// Returns messages `consumer` claimed but never tried (a stopping node's unstarted batch):
    /// claimable again now, the claim's attempt not counted. Returns how many went back.
    @discardableResult
    func giveBack(_ ids: [UUID], consumer: String) async throws -> Int

    /// Pushes the leases `consumer` still holds on `ids` to `lease` from now, so that a slow
    /// delivery is not redelivered elsewhere. Returns how many leases were extended.
    @discardableResult
    func extendLeases(_ ids: [UUID], consumer: String, lease: Duration) async throws -> Int

    /// Moves a leased message to the dead letters with `reason`. False when the lease is gone.
    @discardableResult
    func deadLetter(_ id: UUID, consumer: String, reason: DeadLetterReason) async throws -> Bool

    /// Moves a leased message into `target` under the same id, attempts starting afresh there.
    /// False when `consumer` no longer holds the lease. The default stores a copy in `target`
    /// and then acks it here; a store that can do both in one step overrides it.
    @discardableResult
    func move(_ message: Message, consumer: String, to target: any MessageStore) async throws -> Bool

    /// False for a store that wakes its consumers for every write; true when a write may commit
    /// without waking anyone (PostgreSQL: an insert that skipped its NOTIFY because another
    /// transaction was sending one), so that members about to sleep ask `hasUnannouncedWrites`.
    /// The default is false.
    var mayHaveUnannouncedWrites: Bool { get }

    /// True while a write into this store is on its way to commit without having announced
    /// itself. A member about to go idle asks before its last claim, and looks again shortly
    /// when it is true. The default is false.
    func hasUnannouncedWrites() async throws -> Bool

    /// How many messages wait, by state.
    func counts() async throws -> StoreCounts

    /// The next `limit` messages in delivery order, without claiming them.
    func peek(limit: Int) async throws -> [Message]

    /// Removes every message (not the dead letters); returns how many.
    @discardableResult
    func purge() async throws -> Int
}

extension MessageStore {
    public var mayHaveUnannouncedWrites: Bool { false }

    public func hasUnannouncedWrites() async throws -> Bool { false }

    public func ackAndClaim(_ ids: [UUID], limit: Int, consumer: String, lease: Duration) async throws -> [Message] {
        try await ack(ids, consumer: consumer)
        return try await claim(limit: limit, consumer: consumer, lease: lease)
    }

    @discardableResult
    public func move(_ message: Message, consumer: String, to target: any MessageStore) async throws -> Bool {
        try await moveByCopying(message, consumer: consumer, to: target)
    }

    /// For a store without a head claim of its own: claims one message and keeps it only if it
    /// is the head. A store used by one process at a time (memory, journal) overrides it.
    public func claimHead(consumer: String, lease: Duration) async throws -> Message? {
        guard let head = try await peek(limit: 1).first else { return nil }
        let claimed = try await claim(limit: 1, consumer: consumer, lease: lease)
        guard let message = claimed.first else { return nil }
        guard message.id == head.id else {
            try await giveBack([message.id], consumer: consumer)
            return nil
        }
        return message
    }

    /// Stores a copy in `target` (under the same id, so a repeat stores nothing), then acks here.
    /// At least once: a crash between the two leaves the message in both, never in neither.
    public func moveByCopying(_ message: Message, consumer: String, to target: any MessageStore) async throws -> Bool {
        guard target.name != name || type(of: target) != type(of: self) else {
            throw StoreError(.invalidArgument, "cannot move message \(message.id) from store \"\(name)\" into itself")
        }
        _ = try await target.store(OutgoingMessage(moving: message))
        return try await ack([message.id], consumer: consumer) == 1
    }
}

/// Why and where a message was dead-lettered.
public struct DeadLetterReason: Sendable, Equatable {
    public var reason: String
    public var lastError: String?
    /// The HTTP status of the last attempt, if it was a delivery.
    public var statusCode: Int?
    public var processor: String?
    public var node: String?

    public init(_ reason: String, lastError: String? = nil, statusCode: Int? = nil, processor: String? = nil, node: String? = nil) {
        self.reason = reason
        self.lastError = lastError
        self.statusCode = statusCode
        self.processor = processor
        self.node = node
    }
}

/// A problem with a store call that the caller can fix.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// The store has no row in depot.stores.
        case undeclaredStore
        /// An argument was out of range or malformed.
        case invalidArgument
        /// The database role may not store into this store: it has no row for it in
        /// `depot.producer_stores` (see README, "Roles and privileges").
        case notAllowed
    }
    public let code: Code
    public let message: String
    /// How to fix it.
    public let hint: String?

    public init(_ code: Code, _ message: String, hint: String? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    public var description: String { hint.map { "\(message); \($0)" } ?? message }

    static func undeclared(_ store: String) -> StoreError {
        StoreError(.undeclaredStore, "store \"\(store)\" is not declared",
                   hint: "declare it first: depot stores add \(Quoting.shell(store)) (or INSERT INTO depot.stores (name) VALUES (\(Quoting.sql(store))))")
    }

    static func checkLimit(_ limit: Int) throws {
        guard limit >= 1 else { throw StoreError(.invalidArgument, "limit must be at least 1, got \(limit)") }
    }
}
