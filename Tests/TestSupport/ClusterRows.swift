import Depot
import Foundation

/// Factories for the rows a test sets up, through the library's own statements
/// (`StoreCatalog.declare`, `ProcessorCatalog.add`), so that a test spells out only the
/// columns it is about and a new column needs no change in every test.
extension Cluster {
    /// Declares a store.
    public func addStore(_ name: String, kind: StoreKind = .postgres, failoverStore: String? = nil,
                         guaranteedDelivery: Bool = false) async throws {
        try await StoreCatalog(pool: pool).declare(StoreDefinition(name: name, kind: kind, failoverStore: failoverStore,
                                                                   guaranteedDelivery: guaranteedDelivery))
    }

    /// Adds an endpoint row.
    public func addEndpoint(_ name: String, url: String, method: String = "POST", timeoutMilliseconds: Int = 30000,
                            headers: [String: String] = [:]) async throws {
        guard let parsed = URL(string: url) else { throw URLError(.badURL) }
        try await ProcessorCatalog(pool: pool).add(EndpointDefinition(name: name, url: parsed, method: method,
                                                                      timeoutMilliseconds: timeoutMilliseconds, headers: headers))
    }

    /// Adds a processor row of `kind` on `store`; `configure` sets the columns the test is about.
    public func addProcessor(_ name: String, _ kind: ProcessorKind, from store: String,
                             _ configure: (inout ProcessorDefinition) -> Void = { _ in }) async throws {
        var processor = ProcessorDefinition(name: name, kind: kind, store: store)
        configure(&processor)
        try await ProcessorCatalog(pool: pool).add(processor)
    }
}
