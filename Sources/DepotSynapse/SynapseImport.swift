import Depot
import Foundation
import Postgres

/// Why an import wrote nothing: the plan had errors, or the database refused a row. Each
/// problem names the element (file:line) it came from.
public struct ImportRefused: Error, Sendable, CustomStringConvertible {
    public var problems: [ImportNote]

    public init(problems: [ImportNote]) { self.problems = problems }

    public var description: String {
        let lines = problems.map { "\($0.location): \($0.subject): \($0.message)" }
        return lines.count == 1 ? "\(lines[0]); nothing was written"
            : "\(lines.count) problems; nothing was written:\n  " + lines.joined(separator: "\n  ")
    }
}

/// One row the import wrote, and whether it was new or replaced a row of the same name.
public struct WrittenRow: Sendable, Equatable, Codable {
    /// `stores`, `endpoints` or `processors`.
    public var table: String
    public var name: String
    public var created: Bool
}

/// Writes an `ImportPlan` in one transaction: stores, then endpoints, then processors; all or
/// nothing. A row whose name exists is updated to what the plan says (INSERT … ON CONFLICT DO
/// UPDATE), so importing the same files again changes nothing; rows the plan does not name are
/// left alone, and `processors.batch_size` keeps its value (Synapse has none).
public struct SynapseImport: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) { self.pool = pool }

    /// Writes `plan`; throws `ImportRefused` (nothing written) when the plan has errors or the
    /// database refuses a row, naming the element and the database's message.
    @discardableResult
    public func write(_ plan: ImportPlan) async throws -> [WrittenRow] {
        guard plan.errors.isEmpty else { throw ImportRefused(problems: plan.errors) }
        return try await pool.withTransaction { connection in try await Self.write(plan, on: connection) }
    }

    /// Writes `plan` on `connection`, inside the caller's transaction.
    public static func write(_ plan: ImportPlan, on connection: Connection) async throws -> [WrittenRow] {
        var written: [WrittenRow] = []
        // Every store first without its failover store, then the failover columns: a store may
        // name one defined after it (or in another file), and the foreign key needs it to exist.
        for store in plan.stores {
            let created = try await run(store.source) {
                try await connection.query("""
                    INSERT INTO depot.stores (name, kind, description) VALUES (\(store.name), \(store.kind), \(store.description))
                    ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, description = EXCLUDED.description
                    RETURNING (xmax = 0)
                    """)
            }
            written.append(WrittenRow(table: "stores", name: store.name, created: created))
        }
        for store in plan.stores {
            _ = try await run(store.source) {
                try await connection.query("""
                    UPDATE depot.stores SET failover_store = \(store.failoverStore), guaranteed_delivery = \(store.guaranteedDelivery)
                    WHERE name = \(store.name) RETURNING true
                    """)
            }
        }
        for endpoint in plan.endpoints {
            let created = try await run(endpoint.source) {
                try await connection.query("""
                    INSERT INTO depot.endpoints (name, url, method, timeout_ms)
                    VALUES (\(endpoint.name), \(endpoint.url), \(endpoint.method), \(endpoint.timeoutMs))
                    ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url, method = EXCLUDED.method, timeout_ms = EXCLUDED.timeout_ms
                    RETURNING (xmax = 0)
                    """)
            }
            written.append(WrittenRow(table: "endpoints", name: endpoint.name, created: created))
        }
        for processor in plan.processors {
            let created = try await run(processor.source) { try await connection.query(upsert(processor)) }
            written.append(WrittenRow(table: "processors", name: processor.name, created: created))
        }
        return written
    }

    static func upsert(_ p: ImportedProcessor) -> SQL {
        """
        INSERT INTO depot.processors (name, kind, store, target_endpoint, target_store, handler, interval_ms, cron, concurrency,
                                      retry_interval_ms, max_delivery_attempts, max_delivery_drop, fail_store, non_retry_status_codes,
                                      reply_handler, fault_handler, deactivate_handler, is_active, member_count, pinned_servers,
                                      rate_limit, in_order, max_store_connection_attempts, store_connection_retry_interval_ms,
                                      sequence_header, gap_timeout_ms, correlation_key)
        VALUES (\(p.name), \(p.kind), \(p.store), \(p.targetEndpoint), \(p.targetStore), \(p.handler), \(Int32(clamping: p.intervalMs)),
                \(p.cron), \(Int32(clamping: p.concurrency)), \(Int32(clamping: p.retryIntervalMs)), \(Int32(clamping: p.maxDeliveryAttempts)),
                \(p.maxDeliveryDrop), \(p.failStore), \(p.nonRetryStatusCodes.map { Int32(clamping: $0) }), \(p.replyHandler),
                \(p.faultHandler), \(p.deactivateHandler), \(p.isActive), \(Int32(clamping: p.memberCount)), \(p.pinnedServers),
                \(p.rateLimit), \(p.inOrder), \(Int32(clamping: p.maxStoreConnectionAttempts)),
                \(Int32(clamping: p.storeConnectionRetryIntervalMs)), \(p.sequenceHeader), \(p.gapTimeoutMs), \(p.correlationKey))
        ON CONFLICT (name) DO UPDATE SET
            kind = EXCLUDED.kind, store = EXCLUDED.store, target_endpoint = EXCLUDED.target_endpoint,
            target_store = EXCLUDED.target_store, handler = EXCLUDED.handler, interval_ms = EXCLUDED.interval_ms,
            cron = EXCLUDED.cron, concurrency = EXCLUDED.concurrency, retry_interval_ms = EXCLUDED.retry_interval_ms,
            max_delivery_attempts = EXCLUDED.max_delivery_attempts, max_delivery_drop = EXCLUDED.max_delivery_drop,
            fail_store = EXCLUDED.fail_store, non_retry_status_codes = EXCLUDED.non_retry_status_codes,
            reply_handler = EXCLUDED.reply_handler, fault_handler = EXCLUDED.fault_handler,
            deactivate_handler = EXCLUDED.deactivate_handler, is_active = EXCLUDED.is_active,
            member_count = EXCLUDED.member_count, pinned_servers = EXCLUDED.pinned_servers,
            rate_limit = EXCLUDED.rate_limit, in_order = EXCLUDED.in_order,
            max_store_connection_attempts = EXCLUDED.max_store_connection_attempts,
            store_connection_retry_interval_ms = EXCLUDED.store_connection_retry_interval_ms,
            sequence_header = EXCLUDED.sequence_header, gap_timeout_ms = EXCLUDED.gap_timeout_ms,
            correlation_key = EXCLUDED.correlation_key
        RETURNING (xmax = 0)
        """
    }

    /// Runs one row's statement; a refusal by the database becomes `ImportRefused` naming the element.
    /// A lost connection is rethrown as it is.
    private static func run(_ source: ImportSource, _ statement: () async throws -> Rows) async throws -> Bool {
        do {
            let rows = try await statement()
            guard let first = rows.first else {
                throw ImportRefused(problems: [ImportNote(.error, source.location, "\(source.element) \(source.name)", "the row vanished while importing")])
            }
            return try first.decode(at: 0)
        } catch let error as PostgresError where error.kind == .server && !error.isConnectionLoss {
            let message = "the database refused it: \(error.message)" + (error.hint.map { " (\($0))" } ?? "")
            throw ImportRefused(problems: [ImportNote(.error, source.location, "\(source.element) \(source.name)", message)])
        }
    }
}
