import Depot
import Foundation
import Postgres
import Testing
import TestSupport

@Suite("PostgresStore under concurrency and hostile input")
struct PostgresStoreTests {
    @Test("4 consumers on 4 connections drain 20,000 messages: each claimed exactly once")
    func concurrentDrain() async throws {
        let pool = try await TestDatabase.shared()
        let name = try await TestDatabase.declareStore(on: pool)
        let producer = PostgresStore(name: name, pool: pool)
        var stored: Set<UUID> = []
        for chunk in 0..<20 {
            let receipts = try await producer.store((0..<1000).map { OutgoingMessage(text: "m\(chunk)-\($0)") })
            stored.formUnion(receipts.map(\.id))
        }
        #expect(stored.count == 20_000)

        let claimedPerConsumer = try await withThrowingTaskGroup(of: [UUID].self) { group in
            for consumer in 0..<4 {
                group.addTask {
                    // Each consumer owns one connection, as a worker on its own node would.
                    let ownPool = ConnectionPool(pool.configuration, maximumConnections: 1)
                    let store = PostgresStore(name: name, pool: ownPool)
                    var mine: [UUID] = []
                    while true {
                        let batch = try await store.claim(limit: 50, consumer: "consumer-\(consumer)", lease: .seconds(60))
                        if batch.isEmpty { break }
                        mine += batch.map(\.id)
                        let acked = try await store.ack(batch.map(\.id), consumer: "consumer-\(consumer)")
                        #expect(acked == batch.count)
                    }
                    await ownPool.close()
                    return mine
                }
            }
            return try await group.reduce(into: [[UUID]]()) { $0.append($1) }
        }
        let all = claimedPerConsumer.flatMap { $0 }
        #expect(all.count == 20_000, "claims in total: \(all.count)")
        #expect(Set(all) == stored, "claimed ids differ from stored ids")
        #expect(claimedPerConsumer.filter { !$0.isEmpty }.count == 4, "every consumer should get a share")
        #expect(try await producer.counts().total == 0)
    }

    @Test("3 groups of 100 with 4 consumers: each group in order, never two of a group in flight")
    func groupsUnderConcurrency() async throws {
        let pool = try await TestDatabase.shared()
        let name = try await TestDatabase.declareStore(on: pool)
        let store = PostgresStore(name: name, pool: pool)
        var batch: [OutgoingMessage] = []
        for index in 0..<100 {
            for group in ["a", "b", "c"] {
                var message = OutgoingMessage(text: "\(index)")
                message.groupKey = group
                batch.append(message)
            }
        }
        _ = try await store.store(batch)

        let tracker = GroupTracker()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for consumer in 0..<4 {
                group.addTask {
                    var idleRounds = 0
                    while idleRounds < 20 {
                        let claimed = try await store.claim(limit: 3, consumer: "c\(consumer)", lease: .seconds(60))
                        if claimed.isEmpty {
                            idleRounds += 1
                            try await Task.sleep(for: .milliseconds(5))
                            continue
                        }
                        idleRounds = 0
                        for message in claimed { await tracker.begin(message) }
                        try await Task.sleep(for: .milliseconds(1))
                        for message in claimed { await tracker.end(message) }
                        try await store.ack(claimed.map(\.id), consumer: "c\(consumer)")
                    }
                }
            }
            try await group.waitForAll()
        }
        let result = await tracker.result()
        #expect(result.maxInFlightPerGroup == 1)
        #expect(result.order["a"] == Array(0..<100))
        #expect(result.order["b"] == Array(0..<100))
        #expect(result.order["c"] == Array(0..<100))
    }

    @Test("a group's later message never overtakes an earlier one still being committed")
    func groupOrderFollowsCommitOrder() async throws {
        let pool = try await TestDatabase.shared()
        let name = try await TestDatabase.declareStore(on: pool)
        let store = PostgresStore(name: name, pool: pool)
        var first = OutgoingMessage(text: "first"); first.groupKey = "g"
        var second = OutgoingMessage(text: "second"); second.groupKey = "g"
        let producer = try await Connection.connect(pool.configuration)
        defer { producer.close() }
        try await producer.execute("BEGIN")
        _ = try await store.store([first], on: producer)
        let later = Task { try await store.store(second) }
        // Wait until the second producer is either done or waiting its turn on the group.
        let settled = try await eventually {
            let waiting = try await pool.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            let stored = try await store.counts().total
            return try waiting.first!.decode(at: 0, as: Int.self) > 0 || stored > 0
        }
        #expect(settled)
        let whileOpen = try await store.claim(limit: 5, consumer: "c", lease: .seconds(60))
        #expect(whileOpen.isEmpty, "claimed \(whileOpen.map { String(decoding: $0.payload, as: UTF8.self) }) before the first message committed")
        try await producer.execute("COMMIT")
        _ = try await later.value
        let next = try await store.claim(limit: 5, consumer: "c", lease: .seconds(60))
        #expect(next.map { String(decoding: $0.payload, as: UTF8.self) } == ["first"])
    }

    @Test("concurrent batches sharing idempotency keys in opposite orders do not deadlock")
    func keyedBatchesDoNotDeadlock() async throws {
        let pool = try await TestDatabase.shared()
        let store = PostgresStore(name: try await TestDatabase.declareStore(on: pool), pool: pool)
        let keys = (0..<2000).map { "key-\($0)" }
        func batch(_ keys: [String]) -> [OutgoingMessage] {
            keys.map { var message = OutgoingMessage(text: $0); message.idempotencyKey = $0; return message }
        }
        async let forward = store.store(batch(keys))
        async let backward = store.store(batch(keys.reversed()))
        let (a, b) = try await (forward, backward)
        let idsByKey = Dictionary(uniqueKeysWithValues: zip(keys, a.map(\.id)))
        #expect(zip(keys.reversed(), b.map(\.id)).allSatisfy { idsByKey[$0] == $1 })
        #expect(try await store.counts().total == 2000)
    }

    @Test("a store named like an injection is stored as data and harms nothing")
    func hostileStoreName() async throws {
        let pool = try await TestDatabase.shared()
        let name = try await TestDatabase.declareStore("x'); drop table depot.messages; --", on: pool)
        let store = PostgresStore(name: name, pool: pool)
        let receipt = try await store.store(OutgoingMessage(text: "still here"))
        let claimed = try await store.claim(limit: 1, consumer: "c", lease: .seconds(30))
        #expect(claimed.map(\.id) == [receipt.id])
        #expect(claimed.first?.store == name)
        let tables = try await pool.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'depot' AND tablename = 'messages'")
        #expect(try tables.first?.decode(at: 0, as: Int.self) == 1)
    }

    @Test("a 64 MiB payload goes in and comes out byte for byte")
    func largePayload() async throws {
        let pool = try await TestDatabase.shared()
        let store = PostgresStore(name: try await TestDatabase.declareStore(on: pool), pool: pool)
        var payload = Data(count: 64 << 20)
        payload.withUnsafeMutableBytes { bytes in
            for index in stride(from: 0, to: bytes.count, by: 4096) { bytes[index] = UInt8(truncatingIfNeeded: index / 4096 &* 7 &+ 1) }
        }
        let receipt = try await store.store(OutgoingMessage(payload: payload))
        let claimed = try await store.claim(limit: 1, consumer: "big", lease: .seconds(60))
        #expect(claimed.first?.id == receipt.id)
        #expect(claimed.first?.payload.count == payload.count)
        #expect(claimed.first?.payload == payload)
    }

    @Test("storing into an undeclared store says how to declare it")
    func undeclaredStore() async throws {
        let pool = try await TestDatabase.shared()
        let store = PostgresStore(name: "never-declared", pool: pool)
        let error = await #expect(throws: StoreError.self) { try await store.store(OutgoingMessage(text: "lost?")) }
        #expect(error?.code == .undeclaredStore)
        #expect(error?.description.contains("depot stores add") == true)
    }

    @Test("a batch holding one id already stored stores the others and answers created = false for that one")
    func batchWithAnIdAlreadyStored() async throws {
        let pool = try await TestDatabase.shared()
        let store = PostgresStore(name: try await TestDatabase.declareStore(on: pool), pool: pool)
        var old = OutgoingMessage(text: "old")
        old.id = UUID()
        _ = try await store.store(old)
        var fresh = OutgoingMessage(text: "fresh")
        fresh.id = UUID()
        let receipts = try await store.store([old, fresh, OutgoingMessage(text: "no id")])
        #expect(receipts.map(\.created) == [false, true, true])
        #expect(receipts[0].id == old.id && receipts[1].id == fresh.id)
        #expect(try await store.counts().total == 3)
    }

    @Test("storing on the caller's transaction: committed is present, rolled back is absent")
    func transactionalStore() async throws {
        let pool = try await TestDatabase.shared()
        let store = PostgresStore(name: try await TestDatabase.declareStore(on: pool), pool: pool)
        let kept = try await pool.withTransaction { connection in
            try await store.store([OutgoingMessage(text: "kept")], on: connection)[0].id
        }
        struct Rollback: Error {}
        await #expect(throws: Rollback.self) {
            try await pool.withTransaction { connection in
                _ = try await store.store([OutgoingMessage(text: "gone")], on: connection)
                throw Rollback()
            }
        }
        let waiting = try await store.peek(limit: 10)
        #expect(waiting.map(\.id) == [kept])
    }

    @Test("psql can store text, JSON and bytes, and store_stats counts them")
    func sqlProducerSurface() async throws {
        let pool = try await TestDatabase.shared()
        let name = try await TestDatabase.declareStore(on: pool)
        try await pool.query("SELECT depot.store(\(name), 'plain text')")
        try await pool.query(#"SELECT depot.store(\#(name), '{"order": 7}'::jsonb, headers => '{"source": "psql"}', priority => 5)"#)
        try await pool.query("SELECT depot.store(\(name), '\\x00ff00'::bytea, delay => interval '1 hour')")
        let first = try await pool.query("SELECT depot.store(\(name), 'once', idempotency_key => 'k1')").first!.decode(at: 0, as: UUID.self)
        let again = try await pool.query("SELECT depot.store(\(name), 'twice', idempotency_key => 'k1')").first!.decode(at: 0, as: UUID.self)
        #expect(first == again)

        let store = PostgresStore(name: name, pool: pool)
        let peeked = try await store.peek(limit: 10)
        #expect(peeked.first?.contentType == "application/json")
        #expect(peeked.first?.headers == ["source": "psql"])
        #expect(peeked.first?.payload == Data(#"{"order": 7}"#.utf8))
        #expect(peeked.contains { $0.contentType == "text/plain; charset=utf-8" && $0.payload == Data("plain text".utf8) })
        #expect(peeked.contains { $0.payload == Data([0, 255, 0]) })

        let stats = try #require(try await pool.query("""
            SELECT ready, delayed, in_flight, dead_letters, oldest_ready_age_seconds FROM depot.store_stats WHERE store = \(name)
            """).first)
        let (ready, delayed, inFlight, dead, age) = try stats.decode((Int, Int, Int, Int, Double?).self)
        #expect((ready, delayed, inFlight, dead) == (3, 1, 0, 0))
        #expect((age ?? -1) >= 0)

        let refused = await #expect(throws: PostgresError.self) { try await pool.query("SELECT depot.store('nowhere', 'x')") }
        #expect(refused?.message == "store \"nowhere\" is not declared")
        #expect(refused?.hint?.contains("INSERT INTO depot.stores") == true)
        let badHeaders = await #expect(throws: PostgresError.self) {
            try await pool.query(#"SELECT depot.store(\#(name), 'x', headers => '{"n": 1}')"#)
        }
        #expect(badHeaders?.message.contains("messages_headers_are_strings") == true)
    }
}

/// Watches deliveries per group: how many were in flight at once, and in what order they came.
actor GroupTracker {
    private var inFlight: [String: Int] = [:]
    private var maxInFlight = 0
    private var order: [String: [Int]] = [:]

    func begin(_ message: Message) {
        let group = message.groupKey ?? ""
        inFlight[group, default: 0] += 1
        maxInFlight = max(maxInFlight, inFlight[group]!)
        order[group, default: []].append(Int(String(decoding: message.payload, as: UTF8.self)) ?? -1)
    }

    func end(_ message: Message) { inFlight[message.groupKey ?? "", default: 0] -= 1 }

    func result() -> (maxInFlightPerGroup: Int, order: [String: [Int]]) { (maxInFlight, order) }
}
