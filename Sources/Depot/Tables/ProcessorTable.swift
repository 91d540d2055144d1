import Foundation
import Postgres

/// Every statement on `depot.processors` (and its view `depot.processor_status`), and the row
/// decoders: the node's catalog, the admin commands and the Swift API all use these, so the
/// table's columns are listed here once for reading and once for writing.
package enum ProcessorTable {
    /// Every column, in the table's order, with its value in `p`: the one list that reading
    /// (`processorList`), inserting and importing all follow.
    static func columnValues(_ p: ProcessorDefinition) -> [(column: String, value: SQL)] {
        [
            ("name", "\(p.name)"), ("kind", "\(p.kind.rawValue)"), ("store", "\(p.store)"),
            ("target_endpoint", "\(p.targetEndpoint)"), ("target_store", "\(p.targetStore)"), ("handler", "\(p.handler)"),
            ("interval_ms", "\(Int32(clamping: p.intervalMilliseconds))"), ("cron", "\(p.cron)"),
            ("batch_size", "\(Int32(clamping: p.batchSize))"), ("concurrency", "\(Int32(clamping: p.concurrency))"),
            ("retry_interval_ms", "\(Int32(clamping: p.retryIntervalMilliseconds))"),
            ("max_delivery_attempts", "\(Int32(clamping: p.maxDeliveryAttempts))"), ("max_delivery_drop", "\(p.maxDeliveryDrop)"),
            ("fail_store", "\(p.failStore)"), ("non_retry_status_codes", "\(p.nonRetryStatusCodes.map { Int32(clamping: $0) })"),
            ("reply_handler", "\(p.replyHandler)"), ("fault_handler", "\(p.faultHandler)"), ("deactivate_handler", "\(p.deactivateHandler)"),
            ("is_active", "\(p.isActive)"), ("member_count", "\(Int32(clamping: p.memberCount))"), ("pinned_servers", "\(p.pinnedServers)"),
            ("rate_limit", "\(p.rateLimit)"), ("in_order", "\(p.inOrder)"),
            ("max_store_connection_attempts", "\(Int32(clamping: p.maxStoreConnectionAttempts))"),
            ("store_connection_retry_interval_ms", "\(Int32(clamping: p.storeConnectionRetryIntervalMilliseconds))"),
            ("release_size", "\(p.releaseSize.map { Int32(clamping: $0) })"), ("correlation_header", "\(p.correlationHeader)"),
            ("release_count_header", "\(p.releaseCountHeader)"), ("group_timeout_ms", "\(p.groupTimeoutMilliseconds)"),
            ("group_timeout_from", "\(p.groupTimeoutFromLast ? "last" : "first")"), ("group_timeout_action", "\(p.groupTimeoutAction.rawValue)"),
            ("sequence_header", "\(p.sequenceHeader)"), ("gap_timeout_ms", "\(p.gapTimeoutMilliseconds)"),
            ("output_format", "\(p.outputFormat.rawValue)"), ("correlation_key", "\(p.correlationKey)"),
        ]
    }

    /// The columns a Synapse import writes: those Synapse has a parameter for. The rest
    /// (batch_size, the aggregator's) keep what an operator set when the same files are imported again.
    package static let importedColumns: Set<String> = [
        "name", "kind", "store", "target_endpoint", "target_store", "handler", "interval_ms", "cron", "concurrency",
        "retry_interval_ms", "max_delivery_attempts", "max_delivery_drop", "fail_store", "non_retry_status_codes",
        "reply_handler", "fault_handler", "deactivate_handler", "is_active", "member_count", "pinned_servers",
        "rate_limit", "in_order", "max_store_connection_attempts", "store_connection_retry_interval_ms",
        "sequence_header", "gap_timeout_ms", "correlation_key",
    ]

    private static let columnNames = columnValues(ProcessorDefinition(name: "", kind: .forwarding, store: "")).map(\.column)

    static let processorList: SQL = "SELECT \(unsafeRaw: columnNames.joined(separator: ", ")) FROM depot.processors ORDER BY name"

    /// A processor row with every column from `p`; the table's checks judge it.
    static func processorInsert(_ p: ProcessorDefinition) -> SQL {
        let values = columnValues(p)
        return "INSERT INTO depot.processors (\(unsafeRaw: values.map(\.column).joined(separator: ", "))) VALUES (\(SQL.joined(values.map(\.value))))"
    }

    /// An imported processor: `importedColumns` from `p`, updating a row of the same name; the
    /// one row answers whether it was new.
    package static func processorImport(_ p: ProcessorDefinition) -> SQL {
        let values = columnValues(p).filter { importedColumns.contains($0.column) }
        let names = values.map(\.column)
        let updates = names.dropFirst().map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
        return """
            INSERT INTO depot.processors (\(unsafeRaw: names.joined(separator: ", "))) VALUES (\(SQL.joined(values.map(\.value))))
            ON CONFLICT (name) DO UPDATE SET \(unsafeRaw: updates)
            RETURNING (xmax = 0)
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
