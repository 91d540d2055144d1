import Foundation
import Postgres

/// A processor's outcomes minute by minute, summed over the nodes that ran it (from
/// `depot.processor_stats`): what the status page plots. Each array holds one count a minute,
/// oldest first; the last is the current minute, still counting.
public struct ProcessorMinutes: Sendable, Equatable, Codable {
    public var delivered: [Int]
    public var failed: [Int]
    public var deadLettered: [Int]

    /// `count` minutes of nothing.
    public init(count: Int) {
        delivered = Array(repeating: 0, count: count)
        failed = delivered
        deadLettered = delivered
    }
}

extension ProcessorAdmin {
    /// The last `count` minutes (default 15, at most 60: what `depot.processor_stats` keeps) of
    /// each of `processors`; a processor with no row in that time gets zeros.
    public func minutes(of processors: [String], count: Int = 15) async throws -> [String: ProcessorMinutes] {
        let count = min(max(count, 1), 60)
        var result = Dictionary(uniqueKeysWithValues: processors.map { ($0, ProcessorMinutes(count: count)) })
        guard !processors.isEmpty else { return result }
        // Minutes counted back from the database's own current minute, so that no node's clock
        // matters; the primary key (processor, minute, node) finds each processor's rows.
        let rows = try await pool.query("""
            WITH clock AS (SELECT date_trunc('minute', now()) AS this_minute)
            SELECT ps.processor, (extract(epoch FROM clock.this_minute - ps.minute) / 60)::integer AS ago,
                   sum(ps.delivered)::bigint, sum(ps.failed)::bigint, sum(ps.dead_lettered)::bigint
            FROM depot.processor_stats ps, clock
            WHERE ps.processor = ANY(\(processors))
              AND ps.minute > clock.this_minute - \(Double(count)) * interval '1 minute'
            GROUP BY 1, 2
            """)
        for row in rows {
            let (processor, ago, delivered, failed, dead) = try row.decode((String, Int, Int, Int, Int).self)
            guard (0..<count).contains(ago) else { continue }
            let index = count - 1 - ago
            result[processor]?.delivered[index] = delivered
            result[processor]?.failed[index] = failed
            result[processor]?.deadLettered[index] = dead
        }
        return result
    }
}
