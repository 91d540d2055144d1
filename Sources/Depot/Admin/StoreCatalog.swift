import Foundation
import Postgres

/// Declares, lists and removes stores, and reads their statistics: the admin side of `depot.stores`.
public struct StoreCatalog: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) { self.pool = pool }

    /// Declares a store. Fails with a clear error if the name is taken or a rule is broken.
    public func declare(_ store: StoreDefinition) async throws {
        do {
            try await pool.query(StoreTable.storeInsert(store))
        } catch let error as PostgresError where error.kind == .server {
            throw Self.explain(error, store: store)
        }
    }

    /// Removes a store that holds no messages and no dead letters. Returns false if it did not exist.
    @discardableResult
    public func remove(_ name: String) async throws -> Bool {
        do {
            return try await pool.query(StoreTable.storeDelete(name)).affectedRows == 1
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
        try await connection.query(StoreTable.storeList).map(StoreTable.store(from:))
    }

    /// The row of store `name`, or nil when it is not declared: one lookup by primary key.
    public func definition(of name: String) async throws -> StoreDefinition? {
        try await pool.query(StoreTable.storeSelect(name)).first.map(StoreTable.store(from:))
    }

    /// `depot.store_stats`, by store name; the first `limit` stores only (default nil: all).
    public func statistics(limit: Int? = nil) async throws -> [StoreStatistics] {
        try await pool.query(StoreTable.storeStatistics(limit: limit)).map(StoreTable.statistics(from:))
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
