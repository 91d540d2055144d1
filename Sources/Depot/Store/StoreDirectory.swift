import Foundation
import Postgres

/// Finds the `MessageStore` behind a store name, by the kind its row declares: `postgres`
/// stores are shared through the database; `memory` stores live in this process, one per name.
public final class StoreDirectory: @unchecked Sendable {
    let pool: ConnectionPool
    private let lock = NSLock()
    private var memoryStores: [String: MemoryStore] = [:]

    public init(pool: ConnectionPool) { self.pool = pool }

    /// The store `name` of kind `kind`; throws when this process cannot serve that kind.
    public func store(named name: String, kind: String) throws -> any MessageStore {
        switch kind {
        case "postgres":
            return PostgresStore(name: name, pool: pool)
        case "memory":
            return lock.withLock {
                if let existing = memoryStores[name] { return existing }
                let created = MemoryStore(name: name)
                memoryStores[name] = created
                return created
            }
        default:
            throw StoreError(.invalidArgument, "store \"\(name)\" is of kind \(kind), which this node cannot open",
                             hint: "use a postgres or memory store")
        }
    }
}
