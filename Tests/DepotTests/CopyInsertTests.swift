@testable import Depot
import Foundation
import Postgres
import Testing
import TestSupport

@Suite("Large batches stored by COPY")
struct CopyInsertTests {
    /// 1,000 messages, each with its own headers, content type and priority.
    func varied(_ count: Int) -> [OutgoingMessage] {
        (0..<count).map { index in
            OutgoingMessage(payload: Data("m\(index) 'q' \\ \t".utf8), headers: ["n": "\(index)", "quote": "\"'"],
                            contentType: index.isMultiple(of: 3) ? nil : "text/plain", priority: index % 4)
        }
    }

    @Test("which batches take COPY: from 64 messages on, none delayed, no group or idempotency key")
    func whichBatchesCopy() {
        let plain = varied(PostgresStore.copyThreshold)
        #expect(PostgresStore.canInsertDirectly(plain) && PostgresStore.canCopy(plain))
        #expect(!PostgresStore.canCopy(Array(plain.dropLast())))
        var delayed = plain
        delayed[10].delay = .milliseconds(1)
        #expect(!PostgresStore.canCopy(delayed))
        var keyed = plain
        keyed[3].idempotencyKey = "k"
        #expect(!PostgresStore.canInsertDirectly(keyed))
    }

    @Test("1,000 messages by COPY keep every field and come out in priority, then arrival, order")
    func fieldsKept() async throws {
        let pool = try await TestDatabase.shared()
        let store = PostgresStore(name: try await TestDatabase.declareStore(on: pool), pool: pool)
        let batch = varied(1000)
        #expect(PostgresStore.canCopy(batch))
        let receipts = try await store.store(batch)
        #expect(receipts.count == 1000 && receipts.allSatisfy(\.created))
        #expect(Set(receipts.map(\.id)).count == 1000)

        let out = try await store.peek(limit: 1000)
        let expected = zip(batch, receipts.map(\.id)).enumerated()
            .sorted { ($0.element.0.priority, -$0.offset) > ($1.element.0.priority, -$1.offset) }
        #expect(out.map(\.id) == expected.map(\.element.1))
        for (message, (sent, _)) in zip(out, expected.map(\.element)) {
            #expect(message.payload == sent.payload && message.headers == sent.headers)
            #expect(message.contentType == sent.contentType && message.priority == sent.priority)
            #expect(message.availableAt == message.createdAt, "no delay: available when stored")
        }
        #expect(try await store.counts().ready == 1000)
    }

    @Test("a batch by COPY whose commit fails is not reported stored, and nothing of it is")
    func commitFailureIsNoReceipt() async throws {
        let cluster = try await Cluster.fresh()
        let name = try await TestDatabase.declareStore(on: cluster.pool)
        // A deferred constraint trigger fails the commit after the COPY's CommandComplete.
        try await cluster.sql("""
            CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'refused at commit'; END $$;
            CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON depot.messages
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.refuse();
            """)
        let batch = varied(PostgresStore.copyThreshold)
        #expect(PostgresStore.canCopy(batch))
        let error = await #expect(throws: PostgresError.self) {
            try await PostgresStore(name: name, pool: cluster.pool).store(batch)
        }
        #expect(error?.message.contains("refused at commit") == true)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 0)
    }

    @Test("a COPY batch wakes the store's idle members: its NOTIFY names the store")
    func notifies() async throws {
        let pool = try await TestDatabase.shared()
        let name = try await TestDatabase.declareStore(on: pool)
        let listener = try await Connection.connect(pool.configuration)
        defer { listener.close() }
        try await listener.listen("depot_messages")
        _ = try await PostgresStore(name: name, pool: pool).store(varied(100))
        var heard: [String] = []
        let deadline = ContinuousClock.now + .seconds(10)
        while !heard.contains(name), ContinuousClock.now < deadline {
            heard += try await listener.notifications(timeout: .milliseconds(500)).map(\.payload)
        }
        #expect(heard.contains(name))
    }

    @Test("a COPY batch holding ids already stored stores the rest once and answers created = false for those")
    func retriedBatch() async throws {
        let pool = try await TestDatabase.shared()
        let store = PostgresStore(name: try await TestDatabase.declareStore(on: pool), pool: pool)
        let batch = varied(200).map { message in
            var message = message
            message.id = UUID()
            return message
        }
        // A retry of a batch whose first half committed late.
        _ = try await store.store(Array(batch.prefix(100)))
        let receipts = try await store.store(batch)
        #expect(receipts.map(\.id) == batch.map(\.id))
        #expect(receipts.map(\.created) == Array(repeating: false, count: 100) + Array(repeating: true, count: 100))
        #expect(try await store.counts().total == 200)
    }

    @Test("a COPY batch into an undeclared store stores nothing and says how to declare it")
    func undeclared() async throws {
        let pool = try await TestDatabase.shared()
        let store = PostgresStore(name: "never-declared-\(UUID().uuidString.prefix(6))", pool: pool)
        let error = await #expect(throws: StoreError.self) { try await store.store(varied(100)) }
        #expect(error?.code == .undeclaredStore)
        #expect(error?.description.contains("depot stores add") == true)
    }

    @Test("a COPY batch with a header value that is not a string is refused whole, naming the check")
    func badHeaders() async throws {
        let pool = try await TestDatabase.shared()
        let name = try await TestDatabase.declareStore(on: pool)
        let store = PostgresStore(name: name, pool: pool)
        // A string map cannot hold a non-string; the check still guards rows copied from elsewhere.
        var rows = BinaryCopyRows(columns: 6)
        for index in 0..<2 {
            rows.startRow()
            rows.append(UUID()); rows.append(name); rows.append(Data("x".utf8))
            rows.append(JSONB(index == 0 ? "{}" : #"{"n": 1}"#)); rows.append(String?.none); rows.append(Int32(0))
        }
        let error = await #expect(throws: PostgresError.self) {
            try await pool.withConnection { try await $0.copy(PostgresStore.messageCopy, rows: rows) }
        }
        #expect(error?.message.contains("messages_headers_are_strings") == true)
        #expect(try await store.counts().total == 0)
    }

    @Test("a big batch with a delay goes by INSERT and keeps its delay")
    func delayedBatch() async throws {
        let pool = try await TestDatabase.shared()
        let store = PostgresStore(name: try await TestDatabase.declareStore(on: pool), pool: pool)
        var batch = varied(100)
        for index in 0..<50 { batch[index].delay = .seconds(3600) }
        #expect(!PostgresStore.canCopy(batch))
        _ = try await store.store(batch)
        let counts = try await store.counts()
        #expect(counts.delayed == 50 && counts.ready == 50)
    }
}
