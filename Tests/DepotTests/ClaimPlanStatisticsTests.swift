@testable import Depot
import Foundation
import Postgres
import Testing
import TestSupport

/// The statistics `depot.messages` can have when a burst of messages arrives.
enum TableStatistics: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case neverAnalysed = "never analysed"
    case analysedEmpty = "analysed while empty"
    case analysedFull = "analysed while full"
    var testDescription: String { rawValue }
}

/// The claim statements as the store sends them, explained on a store of 100,000 ready messages
/// in each state of the table's statistics: the plan must walk `messages_claim_order` in order
/// (no Sort over the store's rows) and read a bounded number of buffers, not the whole store.
@Suite("The claim's plan whatever the statistics say")
struct ClaimPlanStatisticsTests {
    static let ready = 100_000
    static let limit = 100

    /// The ack-and-claim reads more than the claim: it finds each acked id through the primary
    /// key (a descent of three or four pages) and deletes it, and its scan steps over those
    /// leased rows before it reaches free ones; its bound is 600 buffers higher.
    @Test("a claim (an ack-and-claim) of 100 walks the claim index unsorted and reads under 1,000 (1,600) buffers",
          arguments: TableStatistics.allCases)
    func claimWalksTheIndex(statistics: TableStatistics) async throws {
        try await checkClaims(statistics: statistics, groups: nil, bufferBound: 1_000)
    }

    /// Each claimed message is first of its group, which the group rule checks by reading the
    /// group's rows (any earlier, or any leased); with groups of 10 that is about ten more
    /// buffers per message claimed, so the bound is the plain one plus 10 × 100 + 1,000 for
    /// the index pages the checks descend through.
    @Test("with group keys (10,000 groups of 10), the claims walk the claim index unsorted and read under 3,000 (3,600) buffers",
          arguments: TableStatistics.allCases)
    func groupedClaimWalksTheIndex(statistics: TableStatistics) async throws {
        try await checkClaims(statistics: statistics, groups: 10_000, bufferBound: 3_000)
    }

    /// store_stats reads each store's first 100,001 rows in claim order (depot.store_depth). On a
    /// table never analysed the planner read the whole store and sorted it; 0010 keeps it on the
    /// index, which stops at the limit. A Function Scan's buffers include its body's: reading
    /// 100,001 rows by the index touches about 7,500, the whole store and its sort about 18,000
    /// and spills to temporary files.
    @Test("store_depth on a never-analysed store of 300,000 reads its first 100,001 rows by the index, not all of them")
    func storeDepthReadsTheHeadOnly() async throws {
        let pool = try await TestDatabase.migrated(maximumConnections: 2)
        defer { Task { await pool.close() } }
        try await pool.query("ALTER TABLE depot.messages SET (autovacuum_enabled = false)")
        let name = try await TestDatabase.declareStore(on: pool)
        try await pool.query("""
            INSERT INTO depot.messages (store, payload)
            SELECT \(name), convert_to(repeat('x', 100), 'UTF8') FROM generate_series(1, 300000)
            """)
        let json = try await pool.query("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM depot.store_depth(\(name))")[0]
            .decode(at: 0, as: String.self)
        let top = try #require((try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])?.first?["Plan"] as? [String: Any])
        let shared = (top["Shared Hit Blocks"] as? Int ?? 0) + (top["Shared Read Blocks"] as? Int ?? 0)
        let temp = (top["Temp Read Blocks"] as? Int ?? 0) + (top["Temp Written Blocks"] as? Int ?? 0)
        print("store_depth plan: \(shared) shared buffers, \(temp) temp")
        #expect(shared < 10_000 && temp == 0, "store_depth read \(shared) buffers and \(temp) temporary ones")
        let depth = try #require(try await pool.query("SELECT ready, estimated FROM depot.store_depth(\(name))").first)
        #expect(try depth.decode("estimated", as: Bool.self))
    }

    private func checkClaims(statistics: TableStatistics, groups: Int?, bufferBound: Int) async throws {
        let pool = try await TestDatabase.migrated(maximumConnections: 2)
        defer { Task { await pool.close() } }
        let name = try await Self.fill(statistics: statistics, groups: groups, on: pool)
        let store = PostgresStore(name: name, pool: pool)
        let lease = Duration.seconds(60)

        let claim = PostgresStore.messageClaim(store: name, limit: Self.limit, consumer: "plan", lease: lease)
        // $1 store, $2 consumer, $3 lease: the EXECUTE of the generic plan passes them in that order.
        #expect(claim.bindings.count == 3)
        let claimArguments: [Argument] = [.init("\(name)", "text"), .init("\("plan")", "text"), .init("\(lease.seconds)", "float8")]

        // Leased for real (committed), so that the ack-and-claim has messages to ack.
        let claimed = try await store.claim(limit: Self.limit, consumer: "plan", lease: lease).map(\.id)
        #expect(claimed.count == Self.limit)
        let ackAndClaim = PostgresStore.messageClaim(store: name, limit: Self.limit, consumer: "plan", lease: lease, acking: claimed)
        // $1 ids, $2 consumer, $3 store, $4 ids, $5 consumer, $6 lease.
        #expect(ackAndClaim.bindings.count == 6)
        let ackAndClaimArguments: [Argument] = [.init("\(claimed)", "uuid[]"), .init("\("plan")", "text"), .init("\(name)", "text"),
                                                .init("\(claimed)", "uuid[]"), .init("\("plan")", "text"), .init("\(lease.seconds)", "float8")]

        for (label, statement, arguments) in [("claim", claim, claimArguments), ("ack-and-claim", ackAndClaim, ackAndClaimArguments)] {
            for generic in [false, true] {
                let plan = try await Self.explain(statement, generic: generic ? arguments : nil, on: pool)
                let what = "\(label), \(generic ? "generic" : "custom") plan, \(statistics)\(groups == nil ? "" : ", grouped")"
                print("claim plan: \(what): \(plan.buffers) buffers, \(plan.nodeTypes.joined(separator: " > "))")
                #expect(!plan.nodeTypes.contains { $0.hasSuffix("Sort") }, "\(what) sorts: \(plan.nodeTypes)")
                #expect(plan.indexes.contains("messages_claim_order"), "\(what) does not walk the claim index: \(plan.indexes)")
                let bound = bufferBound + (label == "claim" ? 0 : 600)
                #expect(plan.buffers < bound, "\(what) read \(plan.buffers) buffers, over \(bound)")
                #expect(plan.rows == Self.limit, "\(what) leased \(plan.rows)")
            }
        }
    }

    /// Declares a store and puts `ready` messages into it, the table's statistics as `statistics`
    /// says. Autovacuum is off for the table so that it does not analyse it mid-test.
    private static func fill(statistics: TableStatistics, groups: Int?, on pool: ConnectionPool) async throws -> String {
        try await pool.query("ALTER TABLE depot.messages SET (autovacuum_enabled = false)")
        let name = try await TestDatabase.declareStore(on: pool)
        if statistics == .analysedEmpty { try await pool.query("ANALYZE depot.messages") }
        if let groups {
            try await pool.query("""
                INSERT INTO depot.messages (store, payload, group_key)
                SELECT \(name), convert_to(repeat('x', 100), 'UTF8'), 'g' || (i % \(groups))
                FROM generate_series(1, \(ready)) i
                """)
        } else {
            try await pool.query("""
                INSERT INTO depot.messages (store, payload)
                SELECT \(name), convert_to(repeat('x', 100), 'UTF8') FROM generate_series(1, \(ready))
                """)
        }
        if statistics == .analysedFull { try await pool.query("ANALYZE depot.messages") }
        return name
    }

    /// One value of a statement, and its type, for the EXECUTE of its generic plan.
    struct Argument: Sendable {
        let value: SQL
        let type: String
        init(_ value: SQL, _ type: String) { self.value = value; self.type = type }
    }

    /// What the test reads from `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`.
    struct Plan: Sendable {
        var nodeTypes: [String] = []
        var indexes: [String] = []
        /// Shared and temporary buffers the execution touched (planning not counted).
        var buffers = 0
        /// Rows the top node returned: the messages leased.
        var rows = 0
    }

    /// Explains `statement` in the claim's own transaction (`ClaimPlan.begin`), then rolls it
    /// back. With `generic` (the statement's values, in order), the statement is prepared and
    /// its generic plan explained, the one a connection keeps after five calls.
    private static func explain(_ statement: SQL, generic arguments: [Argument]?, on pool: ConnectionPool) async throws -> Plan {
        let json: String = try await pool.withConnection { connection in
            try await ClaimPlan.begin(on: connection)
            do {
                let explain = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)"
                let json: String
                if let arguments {
                    try await connection.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                    // By the simple protocol: over the extended one, the $n in the text would be the
                    // PREPARE's own parameters.
                    try await connection.executeUnsafeScript("PREPARE claim_plan AS \(statement.text)")
                    // EXPLAIN EXECUTE cannot take $n arguments; the values go through settings of
                    // this transaction, bound as parameters, and are read back with their types.
                    var expressions: [String] = []
                    for (index, argument) in arguments.enumerated() {
                        let setting = "claim_plan.p\(index + 1)"
                        try await connection.query("SELECT set_config(\(setting), (\(argument.value))::text, true)")
                        expressions.append("current_setting('\(setting)')::\(argument.type)")
                    }
                    let execute = "\(explain) EXECUTE claim_plan(\(expressions.joined(separator: ", ")))"
                    json = try await connection.query(SQL(unsafeSQL: execute))[0].decode(at: 0)
                } else {
                    json = try await connection.query("\(unsafeRaw: explain) \(statement)")[0].decode(at: 0)
                }
                try await connection.execute("ROLLBACK")
                // A prepared statement outlives the transaction that made it.
                if arguments != nil { try await connection.execute("DEALLOCATE claim_plan") }
                return json
            } catch {
                _ = try? await connection.execute("ROLLBACK")
                throw error
            }
        }
        let top = try #require((try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])?.first?["Plan"] as? [String: Any])
        var plan = Plan()
        func walk(_ node: [String: Any]) {
            plan.nodeTypes.append(node["Node Type"] as? String ?? "?")
            if let index = node["Index Name"] as? String { plan.indexes.append(index) }
            (node["Plans"] as? [[String: Any]] ?? []).forEach(walk)
        }
        walk(top)
        plan.buffers = ["Shared Hit Blocks", "Shared Read Blocks", "Local Hit Blocks", "Local Read Blocks",
                        "Temp Read Blocks", "Temp Written Blocks"].reduce(0) { $0 + (top[$1] as? Int ?? 0) }
        plan.rows = top["Actual Rows"] as? Int ?? -1
        return plan
    }
}
