import Postgres

/// Prunes what outlives its use (migrations 0009 and 0022): idempotency keys older than the
/// settings' retention whose messages are gone, the rows of nodes silent for longer than theirs,
/// and the gaps resequencers recorded longer ago than `sequence_gap_retention` (7 days).
/// Any node may run it; two at once skip each other's rows.
struct RetentionPruning: Sendable {
    /// Most keys (and most gaps) one statement removes, so that a large backlog is pruned in
    /// short transactions rather than one long one.
    let batch: Int
    let pool: ConnectionPool

    /// What one pass removed.
    struct Counts: Sendable, Equatable {
        var idempotencyKeys = 0
        var deadNodes = 0
        var sequenceGaps = 0
    }

    init(pool: ConnectionPool, batch: Int = 10_000) {
        self.pool = pool
        self.batch = batch
    }

    /// One pass: prunes until a statement removes fewer keys and fewer gaps than a batch.
    /// Returns what went.
    @discardableResult
    func runOnce() async throws -> Counts {
        var total = Counts()
        while true {
            guard let row = try await pool.query("""
                SELECT idempotency_keys, dead_nodes, sequence_gaps FROM depot.prune(\(Int32(clamping: batch)))
                """).first else { return total }
            let (keys, nodes, gaps) = try row.decode((Int, Int, Int).self)
            total.idempotencyKeys += keys
            total.deadNodes += nodes
            total.sequenceGaps += gaps
            if keys < batch && gaps < batch { return total }
        }
    }
}
