import Foundation
import Postgres

/// A store's row in `depot.stores`.
public struct StoreDefinition: Sendable, Equatable, Codable {
    public var name: String
    /// `postgres` (default), `memory` or `journal`.
    public var kind: String
    /// Where a producer's message goes when the write to this store fails.
    public var failoverStore: String?
    /// Whether producers fall back to `failoverStore` when this store cannot take a message.
    public var guaranteedDelivery: Bool
    public var description: String?

    public init(name: String, kind: String = "postgres", failoverStore: String? = nil, guaranteedDelivery: Bool = false, description: String? = nil) {
        self.name = name
        self.kind = kind
        self.failoverStore = failoverStore
        self.guaranteedDelivery = guaranteedDelivery
        self.description = description
    }
}

/// One row of `depot.store_stats`.
public struct StoreStatistics: Sendable, Equatable, Codable {
    public var store: String
    public var kind: String
    public var ready: Int
    public var delayed: Int
    public var inFlight: Int
    public var deadLetters: Int
    /// Seconds the oldest ready message has waited since it was stored; nil when none is ready.
    public var oldestReadyAgeSeconds: Double?
    /// True when the store is too big to count cheaply (over 100,000 messages or dead letters)
    /// and the counts are estimates.
    public var estimated: Bool = false
}

/// Declares, lists and removes stores, and reads their statistics: the admin side of `depot.stores`.
public struct StoreCatalog: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) { self.pool = pool }

    /// Declares a store. Fails with a clear error if the name is taken or a rule is broken.
    public func declare(_ store: StoreDefinition) async throws {
        do {
            try await pool.query("""
                INSERT INTO depot.stores (name, kind, failover_store, guaranteed_delivery, description)
                VALUES (\(store.name), \(store.kind), \(store.failoverStore), \(store.guaranteedDelivery), \(store.description))
                """)
        } catch let error as PostgresError where error.kind == .server {
            throw Self.explain(error, store: store)
        }
    }

    /// Removes a store that holds no messages and no dead letters. Returns false if it did not exist.
    @discardableResult
    public func remove(_ name: String) async throws -> Bool {
        do {
            return try await pool.query("DELETE FROM depot.stores WHERE name = \(name)").affectedRows == 1
        } catch let error as PostgresError where error.sqlState == .foreignKeyViolation {
            throw StoreError(.invalidArgument, "store \"\(name)\" still holds messages, dead letters or processors",
                             hint: "purge it and remove its processors first")
        }
    }

    /// Every declared store, by name.
    public func list() async throws -> [StoreDefinition] {
        try await pool.withConnection { try await Self.list(on: $0) }
    }

    /// Every declared store, read on `connection` (inside the caller's transaction, if any).
    public static func list(on connection: Connection) async throws -> [StoreDefinition] {
        try await connection.query("""
            SELECT name, kind, failover_store, guaranteed_delivery, description FROM depot.stores ORDER BY name
            """).map { row in
            let (name, kind, failover, guaranteed, description) = try row.decode((String, String, String?, Bool, String?).self)
            return StoreDefinition(name: name, kind: kind, failoverStore: failover, guaranteedDelivery: guaranteed, description: description)
        }
    }

    /// The row of store `name`, or nil when it is not declared: one lookup by primary key.
    public func definition(of name: String) async throws -> StoreDefinition? {
        try await pool.query("""
            SELECT name, kind, failover_store, guaranteed_delivery, description FROM depot.stores WHERE name = \(name)
            """).first.map { row in
            let (name, kind, failover, guaranteed, description) = try row.decode((String, String, String?, Bool, String?).self)
            return StoreDefinition(name: name, kind: kind, failoverStore: failover, guaranteedDelivery: guaranteed, description: description)
        }
    }

    /// `depot.store_stats`, by store name; the first `limit` stores only (default nil: all).
    public func statistics(limit: Int? = nil) async throws -> [StoreStatistics] {
        try await pool.query("""
            SELECT store, kind, ready, delayed, in_flight, dead_letters, oldest_ready_age_seconds, estimated
            FROM depot.store_stats ORDER BY store LIMIT \(limit)
            """).map { row in
            let (store, kind, ready, delayed, inFlight, dead, age, estimated) =
                try row.decode((String, String, Int, Int, Int, Int, Double?, Bool).self)
            return StoreStatistics(store: store, kind: kind, ready: ready, delayed: delayed, inFlight: inFlight,
                                   deadLetters: dead, oldestReadyAgeSeconds: age, estimated: estimated)
        }
    }

    static func explain(_ error: PostgresError, store: StoreDefinition) -> Error {
        switch error.sqlState {
        case .uniqueViolation?:
            return StoreError(.invalidArgument, "store \"\(store.name)\" already exists", hint: "choose another name, or use the existing store")
        case .foreignKeyViolation?:
            return StoreError(.invalidArgument, "failover store \"\(store.failoverStore ?? "")\" is not declared",
                              hint: "declare the failover store first")
        case .checkViolation?:
            let message = error.message
            if message.contains("stores_kind_valid") {
                return StoreError(.invalidArgument, "kind \"\(store.kind)\" is not a store kind", hint: "use postgres, memory or journal")
            }
            if message.contains("stores_name_valid") {
                return StoreError(.invalidArgument, "store name must be 1 to 200 characters without control characters")
            }
            if message.contains("guaranteed_delivery") {
                return StoreError(.invalidArgument, "guaranteed delivery needs a failover store", hint: "add --failover-store NAME")
            }
            if message.contains("failover_is_another") {
                return StoreError(.invalidArgument, "a store cannot be its own failover store")
            }
            return error
        default:
            return error
        }
    }
}
