import Depot
import Foundation
import Postgres
import Testing
import TestSupport

/// The depot.group_* functions (migration 0014) as SQL users call them: the same groups the
/// Swift API sees, and bad arguments refused naming the argument.
@Suite("Message groups in SQL")
struct GroupStoreSQLTests {
    /// A fresh store on the shared test database, and its group store.
    static func store() async throws -> (PostgresStore, ConnectionPool) {
        let pool = try await TestDatabase.shared()
        return (PostgresStore(name: try await TestDatabase.declareStore(on: pool), pool: pool), pool)
    }

    /// The PostgresError `body` throws, if any.
    static func refusal(_ body: () async throws -> Void) async -> PostgresError? {
        do { try await body() } catch let error as PostgresError { return error } catch { return nil }
        return nil
    }

    @Test("groups added in SQL are the groups the Swift API reads, and the other way round")
    func sqlAndSwiftShareGroups() async throws {
        let (store, pool) = try await Self.store()
        let row = try #require(try await pool.query("""
            SELECT size, added, refused FROM depot.group_add(\(store.name), 'order-7',
                ARRAY[convert_to('a', 'UTF8'), convert_to('b', 'UTF8')], ARRAY['{"k": "v"}'::jsonb, NULL], ARRAY['text/plain', NULL])
            """).first)
        #expect(try row.decode((Int, Int, Bool).self) == (2, 2, false))
        let messages = try await store.groupPage("order-7", after: 0, limit: 10)
        #expect(messages.map { String(decoding: $0.payload, as: UTF8.self) } == ["a", "b"])
        #expect(messages.first?.headers == ["k": "v"] && messages.first?.contentType == "text/plain")

        _ = try await store.addToGroup("order-7", OutgoingMessage(text: "c"))
        #expect(try await pool.query("SELECT depot.group_set_condition(\(store.name), 'order-7', 'count=3')").first?.decode(at: 0) == true)
        #expect(try await store.groupMetadata("order-7")?.condition == "count=3")
        let counts = try #require(try await pool.query("SELECT groups, messages FROM depot.group_counts(\(store.name))").first)
        #expect(try counts.decode((Int, Int).self) == (1, 3))
        let polled = try await pool.query("SELECT convert_from(payload, 'UTF8') FROM depot.group_poll(\(store.name), 'order-7')")
        #expect(try polled.first?.decode(at: 0, as: String.self) == "a")
        let page = try await pool.query("SELECT convert_from(payload, 'UTF8') FROM depot.group_page(\(store.name), 'order-7', 0, 10)")
        #expect(try page.map { try $0.decode(at: 0, as: String.self) } == ["b", "c"])
        #expect(try await store.groupMetadata("order-7")?.size == 2)
        #expect(try await pool.query("SELECT depot.group_complete(\(store.name), 'order-7')").first?.decode(at: 0) == true)
        let refused = try #require(try await pool.query("""
            SELECT refused FROM depot.group_add(\(store.name), 'order-7', ARRAY[convert_to('late', 'UTF8')])
            """).first)
        #expect(try refused.decode(at: 0, as: Bool.self))
        #expect(try await pool.query("SELECT depot.group_remove(\(store.name), 'order-7')").first?.decode(at: 0) == true)
        #expect(try await store.groupCounts() == GroupCounts(groups: 0, messages: 0))
    }

    @Test("depot.group_aggregate on one batch: a completed group starts again, a member already in a group is not counted twice, an end marker's count becomes the condition, a full group is released")
    func aggregateBatch() async throws {
        let (store, pool) = try await Self.store()
        let target = try await TestDatabase.declareStore(on: pool)
        let known = UUID()
        _ = try await store.addToGroup("done", [OutgoingMessage(text: "old-1"), OutgoingMessage(text: "old-2")])
        _ = try await pool.query("SELECT depot.group_complete(\(store.name), 'done')")
        var repeated = OutgoingMessage(text: "first")
        repeated.id = known
        _ = try await store.addToGroup("dup", [repeated])
        func part(_ group: String, _ text: String, id: UUID = UUID(), count: String? = nil) -> OutgoingMessage {
            var message = OutgoingMessage(text: text)
            message.id = id
            message.headers["Order"] = group
            message.headers["Count"] = count
            return message
        }
        _ = try await store.store([part("done", "n-1"), part("marked", "m-1", count: "3"), part("dup", "again", id: known),
                                   part("full", "f-1"), part("full", "f-2"), part("marked", "m-2")])
        let claimed = try await store.claim(limit: 10, consumer: "c", lease: .seconds(30))
        #expect(claimed.count == 6)
        let released = try await pool.query("""
            SELECT group_key, released_size FROM depot.group_aggregate(\(store.name), 'c', \(claimed.map(\.id)), 'Order', 2, \(target), 'Count')
            """).map { try $0.decode((String, Int).self) }
        #expect(released.map { "\($0.0) \($0.1)" } == ["full 2"], "only full reached 2 (marked waits for its count of 3)")
        let groups = try await pool.query("""
            SELECT g.group_key, g.size, g.condition, g.complete, (SELECT count(*) FROM depot.group_messages m
                WHERE m.store = g.store AND m.group_key = g.group_key)
            FROM depot.message_groups g WHERE g.store = \(store.name) ORDER BY g.group_key
            """).map { try $0.decode((String, Int, String?, Bool, Int).self) }
        #expect(groups.map { "\($0.0) \($0.1) \($0.2 ?? "-") \($0.3) \($0.4)" } == ["done 1 - false 1", "dup 1 - false 1", "marked 2 3 false 2"])
        #expect(try await store.groupPage("done", after: 0, limit: 10).map { String(decoding: $0.payload, as: UTF8.self) } == ["n-1"])
        #expect(try await pool.query("SELECT count(*) FROM depot.messages WHERE store = \(store.name)").first?.decode(at: 0, as: Int.self) == 0)
        let aggregate = try await pool.query("SELECT convert_from(payload, 'UTF8') FROM depot.messages WHERE store = \(target)")
        #expect(try aggregate.first?.decode(at: 0, as: String.self) == "[\"f-1\", \"f-2\"]")
    }

    @Test("depot.group_expire removes and returns the groups older than the timeout, at most limit at a time")
    func sqlExpiry() async throws {
        let (store, pool) = try await Self.store()
        for group in ["a", "b", "c"] { _ = try await store.addToGroup(group, OutgoingMessage(text: group)) }
        let none = try await pool.query("SELECT group_key FROM depot.group_expire(\(store.name), interval '1 hour')")
        #expect(none.count == 0)
        let expired = try await pool.query("SELECT group_key, size FROM depot.group_expire(\(store.name), interval '0', false, 2)")
        #expect(expired.count == 2)
        let rest = try await pool.query("SELECT group_key FROM depot.group_expire(\(store.name), interval '0')")
        #expect(rest.count == 1)
        #expect(try await store.groupCounts() == GroupCounts(groups: 0, messages: 0))
    }

    @Test("bad arguments to the group functions are refused, naming the argument and saying how to fix it")
    func sqlRefusals() async throws {
        let (store, pool) = try await Self.store()
        let payload = "ARRAY[convert_to('x', 'UTF8')]"
        let cases: [(String, String)] = [
            ("SELECT * FROM depot.group_add(\(quoteLiteral(store.name)), '', \(payload))", "group_key"),
            ("SELECT * FROM depot.group_add(\(quoteLiteral(store.name)), NULL, \(payload))", "group_key"),
            ("SELECT * FROM depot.group_add(NULL, 'g', \(payload))", "store"),
            ("SELECT * FROM depot.group_add(\(quoteLiteral(store.name)), 'g', \(payload), p_when_complete => 'sometimes')", "when_complete"),
            ("SELECT * FROM depot.group_add(\(quoteLiteral(store.name)), 'g', ARRAY[NULL::bytea])", "payloads"),
            ("SELECT * FROM depot.group_add(\(quoteLiteral(store.name)), 'g', \(payload), ARRAY['{}'::jsonb, '{}'::jsonb])", "headers, content_types, ids"),
            ("SELECT depot.group_set_last_released(\(quoteLiteral(store.name)), 'g', -1)", "last_released_sequence"),
            ("SELECT * FROM depot.group_expire(\(quoteLiteral(store.name)), interval '-1 second')", "timeout"),
            ("SELECT * FROM depot.group_expire(\(quoteLiteral(store.name)), interval '1 second', false, 0)", "limit"),
        ]
        for (statement, field) in cases {
            let error = await Self.refusal { try await pool.query(SQL(unsafeSQL: statement)) }
            #expect(error?.sqlState == SQLState("22023") && error?.message.hasPrefix(field) == true && error?.hint != nil,
                    "\(statement) → \(String(describing: error))")
        }
        let undeclared = await Self.refusal { try await pool.query("SELECT * FROM depot.group_add('no-such-store', 'g', ARRAY[''::bytea])") }
        #expect(undeclared?.sqlState == .foreignKeyViolation && undeclared?.message.contains("no-such-store") == true)
        do {
            _ = try await PostgresStore(name: "no-such-store", pool: pool).addToGroup("g", OutgoingMessage(text: "x"))
            Issue.record("adding to a group of an undeclared store succeeded")
        } catch let error as StoreError {
            #expect(error.code == .undeclaredStore && error.description.contains("depot stores add"))
        }
        #expect(try await store.groupCounts().groups == 0)
    }

    @Test("a store renamed carries its groups' messages, and an operator's DELETE of groups removes their messages")
    func renameAndDeleteCarryMessages() async throws {
        let (store, pool) = try await Self.store()
        _ = try await store.addToGroup("g", (0..<3).map { OutgoingMessage(text: "m\($0)") })
        let renamed = "renamed-\(UUID().uuidString.prefix(8))"
        try await pool.query("UPDATE depot.stores SET name = \(renamed) WHERE name = \(store.name)")
        let moved = PostgresStore(name: renamed, pool: pool)
        #expect(try await moved.groupPage("g", after: 0, limit: 10).count == 3)
        #expect(try await moved.groupCounts() == GroupCounts(groups: 1, messages: 3))
        try await pool.query("DELETE FROM depot.message_groups WHERE store = \(renamed)")
        let left = try await pool.query("SELECT count(*) FROM depot.group_messages WHERE store IN (\(renamed), \(store.name))")
        #expect(try left.first?.decode(at: 0, as: Int.self) == 0)
    }

    @Test("depot.group_release sends a group holding an odd member too, and removes the group with its members")
    func releaseWithOddMember() async throws {
        let (store, pool) = try await Self.store()
        let target = try await TestDatabase.declareStore(on: pool)
        _ = try await store.addToGroup("g", [
            OutgoingMessage(payload: Data("{\"a\": 1}".utf8), contentType: "application/json"),
            OutgoingMessage(payload: Data([0xff, 0x00]), contentType: "application/octet-stream"),
            OutgoingMessage(text: "plain", headers: ["k": "v"]),
        ])
        try await pool.query("SELECT depot.group_release(\(store.name), 'g', \(target))")
        let row = try #require(try await pool.query("""
            SELECT convert_from(payload, 'UTF8'), headers ->> 'Depot-Group-Size', headers ->> 'k' FROM depot.messages WHERE store = \(target)
            """).first)
        let (body, size, header) = try row.decode((String, String, String).self)
        #expect(body == "[{\"a\": 1}, \"/wA=\", \"plain\"]" && size == "3" && header == "v")
        #expect(try await store.groupCounts() == GroupCounts(groups: 0, messages: 0))
    }

    @Test("a released payload becomes JSON, text or base64 and never fails its group's release")
    func payloadJSON() async throws {
        let (_, pool) = try await Self.store()
        let rows = try await pool.query("""
            SELECT depot.payload_json(convert_to('{"a": [1]}', 'UTF8'), 'application/json')::text,
                   depot.payload_json(convert_to('{"a": 1}', 'UTF8'), 'application/vnd.order+json; charset=utf-8')::text,
                   depot.payload_json(convert_to('not json', 'UTF8'), 'application/json')::text,
                   depot.payload_json(convert_to('line "1"', 'UTF8'), 'text/plain')::text,
                   depot.payload_json('\\x00ff'::bytea, NULL)::text
            """)
        let row = try #require(rows.first)
        #expect(try row.decode((String, String, String, String, String).self)
                == ("{\"a\": [1]}", "{\"a\": 1}", "\"not json\"", "\"line \\\"1\\\"\"", "\"AP8=\""))
    }

    private func quoteLiteral(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
}
