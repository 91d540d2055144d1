import Foundation
import Postgres

/// Every statement on `depot.processors` (and its view `depot.processor_status`), and the row
/// decoders: the node's catalog, the admin commands and the Swift API all use these, so the
/// table's columns are listed here once for reading and once for writing.
enum ProcessorTable {
    private static let columns: SQL = """
        name, kind, store, target_endpoint, target_store, handler, interval_ms, cron, batch_size,
        concurrency, retry_interval_ms, max_delivery_attempts, max_delivery_drop, fail_store,
        non_retry_status_codes, reply_handler, fault_handler, deactivate_handler, is_active,
        member_count, pinned_servers, rate_limit, in_order, max_store_connection_attempts,
        store_connection_retry_interval_ms, release_size, correlation_header,
        release_count_header, group_timeout_ms, group_timeout_from, group_timeout_action,
        sequence_header, gap_timeout_ms, output_format, correlation_key
        """

    static let processorList: SQL = "SELECT \(columns) FROM depot.processors ORDER BY name"

    /// A processor row with every column from `p`; the table's checks judge it.
    static func processorInsert(_ p: ProcessorDefinition) -> SQL {
        """
        INSERT INTO depot.processors (\(columns))
        VALUES (\(p.name), \(p.kind.rawValue), \(p.store), \(p.targetEndpoint), \(p.targetStore), \(p.handler),
                \(Int32(clamping: p.intervalMilliseconds)), \(p.cron), \(Int32(clamping: p.batchSize)), \(Int32(clamping: p.concurrency)),
                \(Int32(clamping: p.retryIntervalMilliseconds)), \(Int32(clamping: p.maxDeliveryAttempts)), \(p.maxDeliveryDrop),
                \(p.failStore), \(p.nonRetryStatusCodes.map { Int32(clamping: $0) }), \(p.replyHandler), \(p.faultHandler),
                \(p.deactivateHandler), \(p.isActive), \(Int32(clamping: p.memberCount)), \(p.pinnedServers), \(p.rateLimit),
                \(p.inOrder), \(Int32(clamping: p.maxStoreConnectionAttempts)), \(Int32(clamping: p.storeConnectionRetryIntervalMilliseconds)),
                \(p.releaseSize.map { Int32(clamping: $0) }), \(p.correlationHeader), \(p.releaseCountHeader),
                \(p.groupTimeoutMilliseconds), \(p.groupTimeoutFromLast ? "last" : "first"), \(p.groupTimeoutAction.rawValue),
                \(p.sequenceHeader), \(p.gapTimeoutMilliseconds), \(p.outputFormat.rawValue), \(p.correlationKey))
        """
    }

    /// Deactivation by a node (a row it cannot run, a store it cannot reach), with the reason.
    static func processorDeactivate(_ name: String, reason: String) -> SQL {
        "UPDATE depot.processors SET is_active = false, deactivated_reason = \(reason) WHERE name = \(name) AND is_active"
    }

    static func processorActivate(_ name: String) -> SQL {
        "UPDATE depot.processors SET is_active = true WHERE name = \(name)"
    }

    /// Through the function operators call too, which names a missing processor.
    static func processorActivateByOperator(_ name: String) -> SQL { "SELECT depot.activate_processor(\(name))" }

    static func processorDeactivateByOperator(_ name: String, reason: String?) -> SQL {
        "SELECT depot.deactivate_processor(\(name), coalesce(\(reason), 'deactivated by an operator'))"
    }

    /// The first `limit` processors' status by name (nil: all).
    static func processorStatusList(limit: Int?) -> SQL {
        """
        SELECT name, kind, store, active, deactivated_reason, nodes, delivered_5m, failed_5m, dead_lettered_5m,
               last_error, last_error_at
        FROM depot.processor_status ORDER BY name LIMIT \(limit)
        """
    }

    static func status(from row: Row) throws -> ProcessorStatus {
        let (name, kindText, store, active, reason, nodes) = try row.decode((String, String, String, Bool, String?, JSONB).self)
        return ProcessorStatus(
            name: name, kind: try kind(kindText, of: name), store: store, active: active, deactivatedReason: reason,
            nodes: try nodes.decoded(as: [String: Int].self),
            delivered5m: try row.decode("delivered_5m"), failed5m: try row.decode("failed_5m"),
            deadLettered5m: try row.decode("dead_lettered_5m"),
            lastError: try row.decode("last_error"), lastErrorAt: try row.decode("last_error_at"))
    }

    static func processor(from row: Row) throws -> ProcessorDefinition {
        let name: String = try row.decode("name")
        var definition = ProcessorDefinition(name: name, kind: try kind(try row.decode("kind"), of: name), store: try row.decode("store"))
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

    private static func kind(_ text: String, of processor: String) throws -> ProcessorKind {
        guard let kind = ProcessorKind(rawValue: text) else {
            throw StoreError(.invalidArgument, "processor \"\(processor)\" has kind \"\(text)\", which this version of Depot does not know")
        }
        return kind
    }
}
