import Foundation
import Postgres

/// A message leased to a consumer outside the node, with the time its lease ends.
public struct LeasedMessage: Sendable, Equatable {
    public var message: Message
    /// `locked_until`, by the database's clock: after it, another consumer may take the message.
    public var leaseExpiresAt: Date
}

/// The lease-guarded calls of a consumer that is not a processor (the HTTP consumer routes) on
/// a postgres store, each one statement that says which messages it acted on, so that an answer
/// can list the ids whose lease was lost. Every change is guarded by the lease holder's name and
/// the store, as in the SQL API (migration 0015): a consumer whose lease ran out and went to
/// another cannot ack, release or extend it.
public struct ConsumerLeases: Sendable {
    public let store: String
    let pool: ConnectionPool

    public init(store: String, pool: ConnectionPool) {
        self.store = store
        self.pool = pool
    }

    /// Leases up to `limit` ready messages to `consumer` for `lease`, through `depot.claim` (the
    /// SQL API's claim, planned as the store's own), in delivery order; each claim is an attempt.
    public func claim(limit: Int, consumer: String, lease: Duration) async throws -> [LeasedMessage] {
        let rows = try await pool.query(PostgresStore.messageClaimLeased(store: store, limit: limit, consumer: consumer, lease: lease))
        return try rows.map { LeasedMessage(message: try PostgresStore.message(from: $0), leaseExpiresAt: try $0.decode("locked_until")) }
    }

    /// Removes the messages of `ids` that `consumer` holds; returns their ids.
    public func ack(_ ids: [UUID], consumer: String) async throws -> [UUID] {
        try await pool.query(PostgresStore.messageAckLeased(ids, store: store, consumer: consumer)).map { try $0.decode(at: 0) }
    }

    /// Gives back the messages of `ids` that `consumer` holds, claimable again after `retryIn`,
    /// recording `error` if given; returns their ids. Released for now, they wake the store's
    /// waiting consumers (a release is an UPDATE, which the insert trigger does not announce).
    public func release(_ ids: [UUID], consumer: String, retryIn: Duration, error: String?) async throws -> [UUID] {
        try await pool.query(PostgresStore.messageReleaseLeased(ids, store: store, consumer: consumer, retryIn: retryIn, error: error))
            .map { try $0.decode(at: 0) }
    }

    /// Pushes the leases `consumer` holds on `ids` to `lease` from now; returns those ids with
    /// their new expiry.
    public func extend(_ ids: [UUID], consumer: String, lease: Duration) async throws -> [(id: UUID, leaseExpiresAt: Date)] {
        try await pool.query(PostgresStore.messageExtendLeased(ids, store: store, consumer: consumer, lease: lease))
            .map { (try $0.decode(at: 0), try $0.decode(at: 1)) }
    }

    /// Returns claimed messages untried: claimable again now, the claim's attempt not counted.
    public func giveBack(_ ids: [UUID], consumer: String) async throws -> Int {
        try await PostgresStore(name: store, pool: pool).giveBack(ids, consumer: consumer)
    }

    /// True while an insert into the store that skipped its NOTIFY is on its way (see `IdleLook`).
    public func hasUnannouncedWrites() async throws -> Bool {
        try await PostgresStore(name: store, pool: pool).hasUnannouncedWrites()
    }
}
