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

    /// Store name → kind (`postgres`, `memory`, `journal`).
    public var storeKinds: [String: String] { stores.mapValues(\.kind) }
}

/// Reads and changes `depot.processors` and `depot.endpoints`: the SQL seam for processing.
public struct ProcessorCatalog: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) { self.pool = pool }

    /// Every processor (active or not), endpoint and store, as of one moment.
    public func snapshot() async throws -> ProcessingSnapshot {
        try await pool.withTransaction { connection in
            let processors = try await connection.query("""
                SELECT name, kind, store, target_endpoint, target_store, handler, interval_ms, cron, batch_size,
                       concurrency, retry_interval_ms, max_delivery_attempts, max_delivery_drop, fail_store,
                       non_retry_status_codes, reply_handler, fault_handler, deactivate_handler, is_active,
                       member_count, pinned_servers, rate_limit, in_order, max_store_connection_attempts,
                       store_connection_retry_interval_ms, release_size, correlation_header,
                       release_count_header, group_timeout_ms, group_timeout_from, group_timeout_action,
                       sequence_header, gap_timeout_ms, output_format, correlation_key
                FROM depot.processors ORDER BY name
                """).map(Self.processor(from:))
            var endpoints: [String: EndpointDefinition] = [:]
            var unusable: [String: String] = [:]
            for row in try await connection.query("SELECT name, url, method, timeout_ms, headers, message_headers FROM depot.endpoints") {
                let (name, url, method, timeout, headers, messageHeaders) = try row.decode((String, String, String, Int, [String: String], [String]?).self)
                if let parsed = URL(string: url), parsed.host != nil {
                    endpoints[name] = EndpointDefinition(name: name, url: parsed, method: method, timeoutMilliseconds: timeout, headers: headers,
                                                         messageHeaders: messageHeaders)
                } else {
                    unusable[name] = "endpoint \"\(name)\" has url \"\(url)\", which is not a URL with a host"
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
        try await pool.query("""
            UPDATE depot.processors SET is_active = false, deactivated_reason = \(reason)
            WHERE name = \(name) AND is_active
            """).affectedRows == 1
    }

    /// Starts a processor again on every node that may run it; clears the deactivation reason.
    @discardableResult
    public func activate(_ name: String) async throws -> Bool {
        try await pool.query("UPDATE depot.processors SET is_active = true WHERE name = \(name)").affectedRows == 1
    }

    static func processor(from row: Row) throws -> ProcessorDefinition {
        let kindText: String = try row.decode("kind")
        guard let kind = ProcessorKind(rawValue: kindText) else {
            throw StoreError(.invalidArgument, "processor kind \"\(kindText)\" is unknown")
        }
        var definition = ProcessorDefinition(name: try row.decode("name"), kind: kind, store: try row.decode("store"))
        definition.targetEndpoint = try row.decode("target_endpoint")
        definition.targetStore = try row.decode("target_store")
        definition.handler = try row.decode("handler")
        definition.intervalMilliseconds = try row.decode("interval_ms")
        definition.cron = try row.decode("cron")
        definition.batchSize = try row.decode("batch_size")
        definition.concurrency = try row.decode("concurrency")
        definition.retryIntervalMilliseconds = try row.decode("retry_interval_ms")
        definition.maxDeliveryAttempts = try row.decode("max_delivery_attempts")
        definition.maxDeliveryDrop = try row.decode("max_delivery_drop")
        definition.failStore = try row.decode("fail_store")
        definition.nonRetryStatusCodes = try row.decode("non_retry_status_codes")
        definition.replyHandler = try row.decode("reply_handler")
        definition.faultHandler = try row.decode("fault_handler")
        definition.deactivateHandler = try row.decode("deactivate_handler")
        definition.isActive = try row.decode("is_active")
        definition.memberCount = try row.decode("member_count")
        definition.pinnedServers = try row.decode("pinned_servers")
        definition.rateLimit = try row.decode("rate_limit")
        definition.inOrder = try row.decode("in_order")
        definition.maxStoreConnectionAttempts = try row.decode("max_store_connection_attempts")
        definition.storeConnectionRetryIntervalMilliseconds = try row.decode("store_connection_retry_interval_ms")
        definition.releaseSize = try row.decode("release_size")
        definition.correlationHeader = try row.decode("correlation_header")
        definition.releaseCountHeader = try row.decode("release_count_header")
        definition.groupTimeoutMilliseconds = try row.decode("group_timeout_ms")
        definition.groupTimeoutFromLast = try row.decode("group_timeout_from", as: String.self) == "last"
        let action: String = try row.decode("group_timeout_action")
        guard let timeoutAction = GroupTimeoutAction(rawValue: action) else {
            throw StoreError(.invalidArgument, "processor group_timeout_action \"\(action)\" is unknown")
        }
        definition.groupTimeoutAction = timeoutAction
        definition.sequenceHeader = try row.decode("sequence_header")
        definition.gapTimeoutMilliseconds = try row.decode("gap_timeout_ms")
        definition.correlationKey = try row.decode("correlation_key")
        let format: String = try row.decode("output_format")
        guard let outputFormat = AggregateFormat(rawValue: format) else {
            throw StoreError(.invalidArgument, "processor output_format \"\(format)\" is unknown")
        }
        definition.outputFormat = outputFormat
        return definition
    }
}
