import Foundation
import Postgres

/// Where a store's messages live.
public enum StoreKind: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// `depot.messages`, shared by every node on the database.
    case postgres
    /// One node's memory: gone with the process (a failover store for a database outage).
    case memory
    /// One node's journal files, fsynced: survives a restart of that node.
    case journal

    /// A memory or journal store lives in one node's process, not in the database.
    public var isLocalToNode: Bool { self != .postgres }

    public var description: String { rawValue }
}

/// A store's row in `depot.stores`.
public struct StoreDefinition: Sendable, Equatable, Codable {
    public var name: String
    /// Default `.postgres`.
    public var kind: StoreKind
    /// Where a producer's message goes when the write to this store fails.
    public var failoverStore: String?
    /// Whether producers fall back to `failoverStore` when this store cannot take a message.
    public var guaranteedDelivery: Bool
    public var description: String?

    public init(name: String, kind: StoreKind = .postgres, failoverStore: String? = nil, guaranteedDelivery: Bool = false,
                description: String? = nil) {
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
    public var kind: StoreKind
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

/// Every statement on `depot.stores` (and its view `depot.store_stats`), and its row decoders:
/// the admin catalog, the producer's routes, the node's snapshot and the import all use these.
package enum StoreTable {
    private static let columns: SQL = "name, kind, failover_store, guaranteed_delivery, description"

    static func storeInsert(_ store: StoreDefinition) -> SQL {
        """
        INSERT INTO depot.stores (\(columns))
        VALUES (\(store.name), \(store.kind.rawValue), \(store.failoverStore), \(store.guaranteedDelivery), \(store.description))
        """
    }

    static func storeDelete(_ name: String) -> SQL { "DELETE FROM depot.stores WHERE name = \(name)" }

    static let storeList: SQL = "SELECT \(columns) FROM depot.stores ORDER BY name"

    static func storeSelect(_ name: String) -> SQL { "SELECT \(columns) FROM depot.stores WHERE name = \(name)" }

    /// An import's store: its kind and description written, its failover columns left for
    /// `storeFailoverSet` once every store exists.
    package static func storeImport(name: String, kind: StoreKind, description: String?) -> SQL {
        """
        INSERT INTO depot.stores (name, kind, description) VALUES (\(name), \(kind.rawValue), \(description))
        ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, description = EXCLUDED.description
        RETURNING (xmax = 0)
        """
    }

    package static func storeFailoverSet(name: String, failoverStore: String?, guaranteedDelivery: Bool) -> SQL {
        "UPDATE depot.stores SET failover_store = \(failoverStore), guaranteed_delivery = \(guaranteedDelivery) WHERE name = \(name) RETURNING true"
    }

    static func store(from row: Row) throws -> StoreDefinition {
        let (name, kind, failover, guaranteed, description) = try row.decode((String, String, String?, Bool, String?).self)
        return StoreDefinition(name: name, kind: try storeKind(kind, of: name), failoverStore: failover, guaranteedDelivery: guaranteed,
                               description: description)
    }

    /// The first `limit` stores' statistics by name (nil: all).
    static func storeStatistics(limit: Int?) -> SQL {
        """
        SELECT store, kind, ready, delayed, in_flight, dead_letters, oldest_ready_age_seconds, estimated
        FROM depot.store_stats ORDER BY store LIMIT \(limit)
        """
    }

    static func statistics(from row: Row) throws -> StoreStatistics {
        let (store, kind, ready, delayed, inFlight, dead, age, estimated) = try row.decode((String, String, Int, Int, Int, Int, Double?, Bool).self)
        return StoreStatistics(store: store, kind: try storeKind(kind, of: store), ready: ready, delayed: delayed, inFlight: inFlight,
                               deadLetters: dead, oldestReadyAgeSeconds: age, estimated: estimated)
    }

    /// The table's check allows only the three kinds; a newer schema's kind is named, not guessed.
    private static func storeKind(_ text: String, of store: String) throws -> StoreKind {
        guard let kind = StoreKind(rawValue: text) else {
            throw StoreError(.invalidArgument, "store \"\(store)\" has kind \"\(text)\", which this version of Depot does not know",
                             hint: "upgrade depot, or use postgres, memory or journal")
        }
        return kind
    }
}
