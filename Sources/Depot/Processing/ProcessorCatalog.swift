import Foundation
import Postgres

/// Everything a node needs to decide what to run: processors, endpoints and store kinds,
/// read in one transaction so they agree with each other.
public struct ProcessingSnapshot: Sendable, Equatable {
    public var processors: [ProcessorDefinition]
    public var endpoints: [String: EndpointDefinition]
    /// Endpoint rows the node cannot use, by name, with why (a URL Foundation cannot parse).
    public var unusableEndpoints: [String: String]
    /// Every declared store, by name.
    public var stores: [String: StoreDefinition]

    /// Store name → kind.
    public var storeKinds: [String: StoreKind] { stores.mapValues(\.kind) }
}

/// What a node reads of `depot.processors` and `depot.endpoints`, and the changes it and the
/// Swift API make to them (the statements are in `ProcessorTable` and `EndpointTable`).
public struct ProcessorCatalog: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) { self.pool = pool }

    /// Every processor (active or not), endpoint and store, as of one moment.
    public func snapshot() async throws -> ProcessingSnapshot {
        try await pool.withTransaction { connection in
            let processors = try await connection.query(ProcessorTable.processorList).map(ProcessorTable.processor(from:))
            var endpoints: [String: EndpointDefinition] = [:]
            var unusable: [String: String] = [:]
            for row in try await connection.query(EndpointTable.endpointList) {
                switch try EndpointTable.endpoint(from: row) {
                case let .success(endpoint): endpoints[endpoint.name] = endpoint
                case let .failure(problem): unusable[problem.name] = problem.reason
                }
            }
            var stores: [String: StoreDefinition] = [:]
            for store in try await StoreCatalog.list(on: connection) { stores[store.name] = store }
            return ProcessingSnapshot(processors: processors, endpoints: endpoints, unusableEndpoints: unusable, stores: stores)
        }
    }

    /// Stops a processor on every node: is_active false, with the reason operators will read.
    /// Returns false when it was not active (or does not exist).
    @discardableResult
    public func deactivate(_ name: String, reason: String) async throws -> Bool {
        try await pool.query(ProcessorTable.processorDeactivate(name, reason: reason)).affectedRows == 1
    }

    /// Starts a processor again on every node that may run it; clears the deactivation reason.
    @discardableResult
    public func activate(_ name: String) async throws -> Bool {
        try await pool.query(ProcessorTable.processorActivate(name)).affectedRows == 1
    }

    /// Adds a processor row, as an `INSERT INTO depot.processors` would; the database refuses a
    /// row that breaks a rule, naming the column. Nodes start it within a moment (NOTIFY).
    public func add(_ processor: ProcessorDefinition) async throws {
        try await pool.query(ProcessorTable.processorInsert(processor))
    }

    /// Adds an endpoint row, as an `INSERT INTO depot.endpoints` would.
    public func add(_ endpoint: EndpointDefinition) async throws {
        try await pool.query(EndpointTable.endpointInsert(endpoint))
    }
}
