import Postgres

/// Prunes what outlives its use (migration 0009): idempotency keys older than the settings'
/// retention whose messages are gone, and the rows of nodes silent for longer than theirs.
/// Any node may run it; two at once skip each other's rows.
struct RetentionPruning: Sendable {
    /// Most keys one statement removes, so that a large backlog of expired keys is pruned in
    /// short transactions rather than one long one.
    let batch: Int
    let pool: ConnectionPool

    init(pool: ConnectionPool, batch: Int = 10_000) {
        self.pool = pool
        self.batch = batch
    }

    /// One pass: prunes until a statement removes fewer keys than a batch. Returns what went.
    @discardableResult
    func runOnce() async throws -> (idempotencyKeys: Int, deadNodes: Int) {
        var total = (idempotencyKeys: 0, deadNodes: 0)
        while true {
            guard let row = try await pool.query("SELECT idempotency_keys, dead_nodes FROM depot.prune(\(Int32(clamping: batch)))").first else {
                return total
            }
            let (keys, nodes) = try row.decode((Int, Int).self)
            total.idempotencyKeys += keys
            total.deadNodes += nodes
            if keys < batch { return total }
        }
    }
}
