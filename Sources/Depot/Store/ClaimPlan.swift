import Postgres

/// Runs a claim statement in a transaction whose planner may not sort, so that the claim walks
/// `messages_claim_order` in order whatever the table's statistics say.
///
/// Why: the claim's `ORDER BY priority DESC, seq LIMIT n` can be answered by the index in order
/// (reading about n entries) or by collecting every ready row of the store and sorting them. The
/// planner picks by its row estimate, and on a table that was never analysed, or was analysed
/// while empty, it expects a few dozen ready rows where a burst left 100,000: it chose a bitmap
/// scan of them all and an on-disk sort, for every claim, until autovacuum next analysed the
/// table (once a tenth of it changed, at most once a minute), and each connection kept that plan.
/// No statement shape forbids a sort, and no index changes the estimate; `enable_sort = off`
/// does, by pricing every sort above any plan without one, and the index scan is the one plan
/// that needs none.
/// Why `SET LOCAL` in a transaction of its own: it holds for this claim only, on whatever
/// connection and pool the store was given (the caller's other statements keep their plans),
/// it survives the cached plan being remade after an ANALYZE (the plan is made inside the
/// transaction), and needs nothing from the operator. It costs two round trips (BEGIN with the
/// SET, then COMMIT); the claim still commits once, as the single statement did.
enum ClaimPlan {
    /// The settings a claim is planned under, valid until the transaction ends.
    static let settings = "SET LOCAL enable_sort = off"

    /// Runs `statement` (a claim or an ack-and-claim) under `settings`, and commits it.
    static func run(_ statement: SQL, on connection: Connection) async throws -> Rows {
        try await begin(on: connection)
        do {
            let rows = try await connection.query(statement)
            // COMMIT answers ROLLBACK if the transaction failed; that is a failure.
            guard try await connection.query("COMMIT").commandTag == "COMMIT" else {
                throw PostgresError(kind: .server, message: "the claim's transaction was rolled back")
            }
            return rows
        } catch {
            if !connection.isBroken { _ = try? await connection.execute("ROLLBACK") }
            throw error
        }
    }

    /// Opens the claim's transaction with `settings` in one round trip.
    static func begin(on connection: Connection) async throws {
        try await connection.executeUnsafeScript("BEGIN; \(settings)")
    }
}
