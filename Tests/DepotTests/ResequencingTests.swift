import Depot
import Foundation
import Postgres
import Testing
import TestSupport

/// The resequencing processor (issue 24): each correlation group's messages let into a target
/// store in sequence-number order, through nodes in this process.
@Suite("Resequencing processor")
struct ResequencingTests {
    /// Stores `parts` and `out`, and a resequencing processor from one to the other.
    static func resequencing(_ cluster: Cluster, gapTimeoutMilliseconds: Int? = nil, members: Int = 2) async throws {
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('parts'), ('out');
            INSERT INTO depot.processors (name, kind, store, target_store, correlation_header, gap_timeout_ms, interval_ms, batch_size, member_count)
            VALUES ('resequencer', 'resequencing', 'parts', 'out', 'Stream', \(gapTimeoutMilliseconds.map(String.init) ?? "NULL"), 0, 50, \(members));
            """)
    }

    static func part(_ stream: String, _ number: Int?) -> OutgoingMessage {
        var headers = ["Stream": stream]
        headers["Depot-Sequence-Number"] = number.map(String.init)
        return OutgoingMessage(payload: Data("\(stream)-\(number ?? 0)".utf8), headers: headers, contentType: "text/plain")
    }

    /// The sequence numbers of `stream` in the target, in the target's arrival order (seq).
    static func delivered(_ cluster: Cluster, _ stream: String) async throws -> [Int] {
        try await cluster.rows("""
            SELECT (headers ->> 'Depot-Sequence-Number')::int FROM depot.messages
            WHERE store = 'out' AND headers ->> 'Stream' = '\(stream)' ORDER BY seq
            """).map { try $0.decode(at: 0) }
    }

    @Test("1..1,000 shuffled, through two nodes, arrive in the target as 1..1,000 in order (and a second stream beside it)")
    func shuffledThroughTwoNodes() async throws {
        let cluster = try await Cluster.fresh()
        try await Self.resequencing(cluster)
        let nodes = [cluster.startNode("node-a"), cluster.startNode("node-b")]
        var random = SeededRandom(seed: 24)
        let messages = ((1...1000).map { Self.part("a", $0) } + (1...200).map { Self.part("b", $0) }).shuffled(using: &random)
        let parts = PostgresStore(name: "parts", pool: cluster.pool)
        for start in stride(from: 0, to: messages.count, by: 40) {
            _ = try await parts.store(Array(messages[start..<min(start + 40, messages.count)]))
        }
        let done = try await eventually(timeout: .seconds(60)) {
            try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'out'") >= 1200
        }
        #expect(done)
        for node in nodes { try await node.stop() }

        #expect(try await Self.delivered(cluster, "a") == Array(1...1000))
        #expect(try await Self.delivered(cluster, "b") == Array(1...200))
        let group = try await cluster.rows("SELECT group_key, size, last_released_sequence FROM depot.message_groups ORDER BY group_key")
        #expect(try group.map { try $0.decode((String, Int, Int).self) }.map { "\($0.0) \($0.1) \($0.2)" } == ["a 0 1000", "b 0 200"])
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'parts'") == 0)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.dead_letters") == 0)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.sequence_gaps") == 0)
        // Released messages keep their payload and carry their group as their lane (group_key).
        let first = try await cluster.rows("""
            SELECT convert_from(payload, 'UTF8'), group_key FROM depot.messages WHERE store = 'out' AND headers ->> 'Stream' = 'a' ORDER BY seq LIMIT 1
            """)
        let (payload, lane) = try #require(first.first).decode((String, String?).self)
        #expect(payload == "a-1" && lane == "a")
    }

    @Test("a missing number holds the rest until gap_timeout_ms; then they go out in order, the gap recorded; late and duplicate numbers are dead-lettered")
    func gapTimesOut() async throws {
        let cluster = try await Cluster.fresh()
        try await Self.resequencing(cluster, gapTimeoutMilliseconds: 1500, members: 1)
        let node = cluster.startNode("node-a")
        let parts = PostgresStore(name: "parts", pool: cluster.pool)
        // 1..20 without 7, shuffled, a second 3, and one message without a number.
        var random = SeededRandom(seed: 7)
        _ = try await parts.store(((1...20).filter { $0 != 7 }.map { Self.part("g", $0) } + [Self.part("g", 3), Self.part("g", nil)])
            .shuffled(using: &random))

        // 1..6 go out; 8..20 wait behind the missing 7.
        let held = try await eventually {
            let metadata = try await parts.groupMetadata("g")
            return try await Self.delivered(cluster, "g") == Array(1...6) && metadata?.size == 13
        }
        let early = try await Self.delivered(cluster, "g")
        #expect(held, "delivered \(early)")
        let released = try await eventually { try await Self.delivered(cluster, "g").count == 19 }
        #expect(released)
        #expect(try await Self.delivered(cluster, "g") == Array(1...6) + Array(8...20))

        let gapHeaders = try await cluster.rows("""
            SELECT headers ->> 'Depot-Sequence-Number', headers ->> 'Depot-Sequence-Gap' FROM depot.messages
            WHERE store = 'out' AND headers ? 'Depot-Sequence-Gap'
            """).map { try $0.decode((String, String).self) }
        #expect(gapHeaders.map { "\($0.0):\($0.1)" } == ["8:7"])
        let gaps = try await cluster.rows("""
            SELECT g.group_key, g.first_missing, g.last_missing, g.processor, m.headers ->> 'Depot-Sequence-Number'
            FROM depot.sequence_gaps g JOIN depot.messages m ON m.id = g.released_id
            """).map { try $0.decode((String, Int, Int, String, String).self) }
        #expect(gaps.map { "\($0.0) \($0.1)-\($0.2) \($0.3) \($0.4)" } == ["g 7-7 resequencer 8"])

        // 7 arrives after its gap was skipped: dead-lettered, never sent out of order.
        _ = try await parts.store(Self.part("g", 7))
        let late = try await eventually {
            try await cluster.integer("SELECT count(*) FROM depot.dead_letters WHERE reason = 'sequence number already passed'") == 2
        }
        #expect(late)
        try await node.stop()
        let dead = try await cluster.rows("""
            SELECT reason, last_error, processor FROM depot.dead_letters ORDER BY reason, last_error
            """).map { try $0.decode((String, String, String).self) }
        #expect(dead.map { "\($0.0) | \($0.1) | \($0.2)" } == [
            "no sequence number | message has no header \"Depot-Sequence-Number\" holding a number from 1 up, got none | resequencer",
            "sequence number already passed | sequence number 3 of group \"g\" came after it was released or skipped as a gap | resequencer",
            "sequence number already passed | sequence number 7 of group \"g\" came after it was released or skipped as a gap | resequencer",
        ])
        #expect(try await Self.delivered(cluster, "g").count == 19)
        #expect(try await parts.groupMetadata("g")?.size == 0)
        #expect(try await parts.groupMetadata("g")?.lastReleasedSequence == 20)
    }

    @Test("bad resequencing rows are refused by the database, naming the column")
    func badRowsRefused() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('parts'), ('out')")
        let cases: [(String, String, String)] = [
            ("target_store, sequence_header", "'out', NULL", "sequence_header"),
            ("target_store, sequence_header", "'out', ''", "sequence_header"),
            ("target_store, gap_timeout_ms", "'out', -1", "gap_timeout_ms"),
            ("target_store, gap_timeout_ms", "NULL, 1000", "target_store"),
            ("target_store, gap_timeout_ms", "'parts', 1000", "target_store"),
        ]
        for (columns, values, column) in cases {
            do {
                try await cluster.sql("""
                    INSERT INTO depot.processors (name, kind, store, \(columns)) VALUES ('rs', 'resequencing', 'parts', \(values))
                    """)
                Issue.record("a row with (\(columns)) = (\(values)) was accepted")
            } catch let error as PostgresError {
                #expect(error.sqlState == .checkViolation && error.message.contains("processors.\(column)"), "\(values) → \(error)")
            }
        }
        // A good row, left to the defaults: the header is Depot-Sequence-Number, no gap timeout.
        try await cluster.sql("INSERT INTO depot.processors (name, kind, store, target_store) VALUES ('rs', 'resequencing', 'parts', 'out')")
        let row = try await cluster.rows("SELECT sequence_header, gap_timeout_ms FROM depot.processors WHERE name = 'rs'")
        let (header, timeout) = try #require(row.first).decode((String, Int?).self)
        #expect(header == "Depot-Sequence-Number" && timeout == nil)
        do {
            try await cluster.sql("UPDATE depot.processors SET gap_timeout_ms = -5 WHERE name = 'rs'")
            Issue.record("an update to gap_timeout_ms -5 was accepted")
        } catch let error as PostgresError {
            #expect(error.message.contains("processors.gap_timeout_ms") && error.message.contains("-5"), "\(error)")
        }
    }
}

/// A reproducible shuffle: SplitMix64.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
