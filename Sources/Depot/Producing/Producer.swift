import Foundation
import Postgres

/// Where a producer's messages went.
public struct ProducerReceipt: Sendable, Equatable {
    /// One per message, in input order.
    public let receipts: [StoreReceipt]
    /// The failover store holding the messages because the primary could not take them; nil
    /// when the primary took them.
    public let heldIn: String?
}

/// Stores messages into a store by name, with the store row's guaranteed delivery: when the
/// primary cannot take them (database unreachable or too slow) and the row has
/// `guaranteed_delivery` and a `failover_store`, they go to the failover store instead, and a
/// node drains it back later. The HTTP ingress uses it; so can a Swift app that stores directly.
///
/// Every message gets its id before the first try, so a primary write that times out but
/// commits after all, and its failover copy drained later, are stored once.
public final class Producer: Sendable {
    /// How a producer decides the primary failed.
    public struct Configuration: Sendable {
        /// A write to the primary that takes longer counts as failed. Default 5 s.
        public var primaryTimeout: Duration = .seconds(5)
        /// Where the store rows last read are kept, so that failover works after a restart while
        /// the database is down. Default nil (memory only); nodes keep it beside their journals.
        public var routesFile: URL?

        public init(primaryTimeout: Duration = .seconds(5), routesFile: URL? = nil) {
            self.primaryTimeout = primaryTimeout
            self.routesFile = routesFile
        }
    }

    let stores: StoreDirectory
    let routes: StoreRoutes
    let configuration: Configuration
    let metrics: NodeMetrics?
    /// One coalescer per store name, created on first use.
    private let coalescers = CoalescerTable()

    /// - Parameters:
    ///   - stores: opens stores by kind; share it with the node that drains the failover stores.
    ///   - metrics: counts what was stored and what was held in failover, if given.
    public init(pool: ConnectionPool, stores: StoreDirectory, configuration: Configuration = Configuration(), metrics: NodeMetrics? = nil) {
        self.stores = stores
        self.configuration = configuration
        self.metrics = metrics
        routes = StoreRoutes(pool: pool, file: configuration.routesFile)
    }

    /// Reads the store rows now, so that failover works even when the database goes away before
    /// the first message (a node does this at start). Throws when the database cannot be read.
    public func refreshRoutes() async throws {
        try await routes.refresh()
    }

    /// Stores one message into store `name`. Messages stored at the same moment by many callers
    /// share one round trip and one commit; each call returns once its message is committed.
    public func store(_ message: OutgoingMessage, in name: String) async throws -> ProducerReceipt {
        // The store must be known before it gets a coalescer: the table keeps one per name for
        // good, and names from unauthenticated requests would otherwise grow it without bound.
        _ = try await routes.definition(of: name)
        return try await coalescers.coalescer(for: name) { [self] batch in try await store(batch, in: name) }.store(message)
    }

    /// Stores messages into store `name`, all in one place: all in the primary, or all in its
    /// failover store. Throws `StoreError` for an undeclared store or a bad message, and the
    /// primary's error when it failed and the store has no guaranteed delivery.
    public func store(_ messages: [OutgoingMessage], in name: String) async throws -> ProducerReceipt {
        guard !messages.isEmpty else { return ProducerReceipt(receipts: [], heldIn: nil) }
        let route = try await routes.definition(of: name)
        let batch = messages.withIds()
        let primary = try stores.store(named: name, kind: route.kind)
        do {
            let receipts = try await withDeadline(configuration.primaryTimeout) { try await primary.store(batch) }
            metrics?.recordStored(batch.count, store: name, heldIn: nil)
            return ProducerReceipt(receipts: receipts, heldIn: nil)
        } catch where Self.isUnavailability(error) {
            guard route.guaranteedDelivery, let failoverName = route.failoverStore, let failoverRoute = routes.cached(failoverName) else {
                throw error
            }
            let failover = try stores.store(named: failoverName, kind: failoverRoute.kind)
            let receipts = try await failover.store(batch)
            metrics?.recordStored(batch.count, store: name, heldIn: failoverName)
            return ProducerReceipt(receipts: receipts, heldIn: failoverName)
        }
    }

    /// Whether `error` means the store could not answer now (rather than refused the message).
    static func isUnavailability(_ error: Error) -> Bool {
        if error is DeadlineExceeded { return true }
        guard let error = error as? PostgresError else { return false }
        if error.isConnectionLoss { return true }
        // Out of resources (53…), a cancelled statement, a read-only server during a failover.
        guard let state = error.sqlState else { return false }
        return state.errorClass == SQLState.insufficientResourcesClass || state == .queryCanceled || state == .readOnlySQLTransaction
    }
}

/// The coalescers of a producer, by store name.
private final class CoalescerTable: @unchecked Sendable {
    private let lock = NSLock()
    private var table: [String: StoreCoalescer] = [:]

    func coalescer(for store: String, write: @escaping StoreCoalescer.Write) -> StoreCoalescer {
        lock.withLock {
            if let existing = table[store] { return existing }
            let created = StoreCoalescer(write: write)
            table[store] = created
            return created
        }
    }
}
