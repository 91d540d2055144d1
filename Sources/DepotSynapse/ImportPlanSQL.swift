import Depot
import Foundation

extension ImportPlan {
    /// The statements an import runs, with values written as SQL literals: what `--dry-run`
    /// prints. Runnable in psql; the import itself binds every value as a parameter.
    public var sqlScript: String {
        var lines = ["BEGIN;"]
        // What a file names goes into a comment on one line: a line break would end the comment
        // and run the rest (a parameter named "&#10;DROP TABLE …" did, piped into psql).
        func source(_ source: ImportSource) -> String { "-- " + Quoting.oneLine("\(source.element) \(source.name) (\(source.location))") }
        for store in stores {
            lines.append(source(store.source))
            lines.append("INSERT INTO depot.stores (name, kind, description) VALUES (\(literal(store.name)), \(literal(store.kind)), \(literal(store.description)))")
            lines.append("    ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, description = EXCLUDED.description;")
        }
        for store in stores {
            lines.append("UPDATE depot.stores SET failover_store = \(literal(store.failoverStore)), guaranteed_delivery = \(store.guaranteedDelivery) WHERE name = \(literal(store.name));")
        }
        for endpoint in endpoints {
            lines.append(source(endpoint.source))
            lines.append("INSERT INTO depot.endpoints (name, url, method, timeout_ms) VALUES (\(literal(endpoint.name)), \(literal(endpoint.url)), \(literal(endpoint.method)), \(endpoint.timeoutMs))")
            lines.append("    ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url, method = EXCLUDED.method, timeout_ms = EXCLUDED.timeout_ms;")
        }
        for p in processors {
            var columns: [(String, String)] = [
                ("name", literal(p.name)), ("kind", literal(p.kind)), ("store", literal(p.store)),
                ("target_endpoint", literal(p.targetEndpoint)), ("target_store", literal(p.targetStore)), ("handler", literal(p.handler)),
                ("interval_ms", String(p.intervalMs)), ("cron", literal(p.cron)), ("concurrency", String(p.concurrency)),
                ("retry_interval_ms", String(p.retryIntervalMs)), ("max_delivery_attempts", String(p.maxDeliveryAttempts)),
                ("max_delivery_drop", String(p.maxDeliveryDrop)), ("fail_store", literal(p.failStore)),
                ("non_retry_status_codes", "'{\(p.nonRetryStatusCodes.map(String.init).joined(separator: ","))}'::integer[]"),
                ("reply_handler", literal(p.replyHandler)), ("fault_handler", literal(p.faultHandler)),
                ("deactivate_handler", literal(p.deactivateHandler)), ("is_active", String(p.isActive)),
                ("member_count", String(p.memberCount)),
                ("pinned_servers", p.pinnedServers.isEmpty ? "'{}'::text[]" : "ARRAY[\(p.pinnedServers.map { literal($0) }.joined(separator: ", "))]"),
                ("rate_limit", p.rateLimit.map { String($0) } ?? "NULL"), ("in_order", String(p.inOrder)),
                ("max_store_connection_attempts", String(p.maxStoreConnectionAttempts)),
                ("store_connection_retry_interval_ms", String(p.storeConnectionRetryIntervalMs)),
            ]
            if p.kind == "resequencing" {
                columns.append(("sequence_header", literal(p.sequenceHeader)))
                columns.append(("gap_timeout_ms", p.gapTimeoutMs.map(String.init) ?? "NULL"))
                columns.append(("correlation_key", literal(p.correlationKey)))
            }
            lines.append(source(p.source))
            lines.append("INSERT INTO depot.processors (\(columns.map(\.0).joined(separator: ", ")))")
            lines.append("    VALUES (\(columns.map(\.1).joined(separator: ", ")))")
            lines.append("    ON CONFLICT (name) DO UPDATE SET \(columns.dropFirst().map { "\($0.0) = EXCLUDED.\($0.0)" }.joined(separator: ", "));")
        }
        lines.append("COMMIT;")
        return lines.joined(separator: "\n")
    }

    private func literal(_ text: String?) -> String {
        text.map(Quoting.sql) ?? "NULL"
    }
}
