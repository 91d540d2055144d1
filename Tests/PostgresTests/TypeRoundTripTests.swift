import Foundation
import Postgres
import Testing
import TestSupport

@Suite("Typed parameters and rows")
struct TypeRoundTripTests {
    @Test("every supported type survives a round trip")
    func roundTrip() async throws {
        let connection = try await TestDatabase.connect()
        defer { connection.close() }
        let id = UUID()
        let when = Date(timeIntervalSince1970: 1_700_000_000.123456)
        let bytes = Data([0, 1, 0, 255, 39, 0])
        let row = try #require(try await connection.query("""
            SELECT \("żółw 'quoted' \"x\"")::text, \(Int32(-7))::int4, \(Int.max)::int8, \(true)::bool, \(bytes)::bytea,
                   \(id)::uuid, \(when)::timestamptz, \(JSONB(#"{"a": "b"}"#))::jsonb, \(["x", "y,\"z\"", ""])::text[],
                   \([Int32(1), 2, 3])::int4[], \(2.5)::float8, \(Optional<String>.none)::text
            """).first)
        let (text, small, big, flag, blob, uuid, date, json, texts, ints, double, missing) =
            try row.decode((String, Int32, Int, Bool, Data, UUID, Date, JSONB, [String], [Int32], Double, String?).self)
        #expect(text == "żółw 'quoted' \"x\"")
        #expect(small == -7)
        #expect(big == Int.max)
        #expect(flag)
        #expect(blob == bytes)
        #expect(uuid == id)
        #expect(abs(date.timeIntervalSince(when)) < 0.000_002)
        #expect(try json.decoded(as: [String: String].self) == ["a": "b"])
        #expect(texts == ["x", "y,\"z\"", ""])
        #expect(ints == [1, 2, 3])
        #expect(double == 2.5)
        #expect(missing == nil)
    }

    @Test("string maps become jsonb objects that PostgreSQL reads key by key, whatever the characters")
    func stringMapsAsJSONB() async throws {
        let connection = try await TestDatabase.connect()
        defer { connection.close() }
        let awkward: [String: String] = [
            "quote\"and\\backslash": "value \"quoted\" \\ end",
            // (No NUL: jsonb cannot hold \u0000, whoever encodes it.)
            "controls": "tab\tnewline\nreturn\rbell\u{7}unit\u{1F}",
            "unicode żółw": "emoji 🐢 and / slash",
            "": "",
            "b": "2", "a": "1",
        ]
        for map in [awkward, [:], ["only": "one"]] {
            let row = try #require(try await connection.query("""
                SELECT \(map)::jsonb, (SELECT count(*) FROM jsonb_each_text(\(map)::jsonb)),
                       (SELECT coalesce(jsonb_object_agg(key, value), '{}') FROM jsonb_each_text(\(map)::jsonb))::text
                """).first)
            let (decoded, count, text) = try row.decode(([String: String], Int, String).self)
            #expect(decoded == map)
            #expect(count == map.count)
            // PostgreSQL's own reading of each value, not only our decoder's.
            let reread = try JSONDecoder().decode([String: String].self, from: Data(text.utf8))
            #expect(reread == map)
        }
        // As a batch's headers go: one jsonb[] parameter.
        let maps = [awkward, [:], ["only": "one"]]
        let row = try #require(try await connection.query("SELECT \(maps), (SELECT count(*) FROM unnest(\(maps)) AS h WHERE h ? 'only')").first)
        #expect(try row.decode(at: 0, as: [[String: String]].self) == maps)
        #expect(try row.decode(at: 1, as: Int.self) == 1)
    }

    @Test("string maps read from JSON text as PostgreSQL keeps it: escapes, surrogate pairs, spacing; anything else is refused")
    func stringMapsFromJSONText() async throws {
        let connection = try await TestDatabase.connect()
        defer { connection.close() }
        // json (unlike jsonb) keeps the text as written, so these escapes reach the decoder.
        let row = try #require(try await connection.query(#"""
            SELECT ' { "turtle" : "\ud83d\udc22" , "esc":"\"\\\/\b\f\n\r\t\u00e9", "dup": "1", "dup": "2" } '::json,
                   '{"a": 1}'::jsonb, '["a"]'::jsonb, '{"a": "b"}'::json, '{"a": "\ud83d"}'::json
            """#).first)
        #expect(try row.decode(at: 0, as: [String: String].self) == ["turtle": "🐢", "esc": "\"\\/\u{8}\u{C}\n\r\té", "dup": "2"])
        #expect(try row.decode(at: 3, as: [String: String].self) == ["a": "b"])
        for column in [1, 2, 4] {
            #expect(throws: PostgresError.self, "column \(column)") { try row.decode(at: column, as: [String: String].self) }
        }
    }

    @Test("arrays with NULLs and empty arrays")
    func arraysWithNulls() async throws {
        let connection = try await TestDatabase.connect()
        defer { connection.close() }
        let values: [String?] = ["a", nil, "c"]
        let row = try #require(try await connection.query("SELECT \(values), \([String]())::text[], ARRAY[]::int4[]").first)
        #expect(try row.decode(at: 0, as: [String?].self) == values)
        #expect(try row.decode(at: 1, as: [String].self) == [])
        #expect(try row.decode(at: 2, as: [Int32].self) == [])
        #expect(throws: PostgresError.self) { try row.decode(at: 0, as: [String].self) }
    }

    @Test("a decode failure names the column, its index and the Swift type")
    func decodeFailureNamesColumn() async throws {
        let connection = try await TestDatabase.connect()
        defer { connection.close() }
        let row = try #require(try await connection.query("SELECT 'abc'::text AS label, NULL::int4 AS missing").first)
        let wrongType = #expect(throws: PostgresError.self) { try row.decode("label", as: Int.self) }
        #expect(wrongType?.message.contains("\"label\"") == true)
        #expect(wrongType?.message.contains("index 0") == true)
        #expect(wrongType?.message.contains("Int") == true)
        let null = #expect(throws: PostgresError.self) { try row.decode("missing", as: Int.self) }
        #expect(null?.message.contains("NULL") == true)
        let unknown = #expect(throws: PostgresError.self) { try row.decode("nope", as: Int.self) }
        #expect(unknown?.message.contains("no column \"nope\"") == true)
    }

    @Test("interpolated values are parameters, never SQL")
    func interpolationIsParameterised() async throws {
        let connection = try await TestDatabase.connect()
        defer { connection.close() }
        let hostile = "x'); DROP TABLE pg_class; --"
        let sql: SQL = "SELECT \(hostile)::text AS echoed"
        #expect(sql.text == "SELECT $1::text AS echoed")
        #expect(!sql.description.contains(hostile))
        let row = try #require(try await connection.query(sql).first)
        #expect(try row.decode("echoed", as: String.self) == hostile)
    }

    @Test("a statement interpolated into another keeps its values as parameters, renumbered in order")
    func fragmentsAreRenumbered() async throws {
        let connection = try await TestDatabase.connect()
        defer { connection.close() }
        let hostile = "'; DROP TABLE pg_class; --"
        let tail: SQL = "\(hostile)::text AS b, \(12)::int8 AS c, '$1 stays text' AS d"
        let sql: SQL = "SELECT \(7)::int8 AS a, \(tail), \(8)::int8 AS e"
        #expect(sql.text == "SELECT $1::int8 AS a, $2::text AS b, $3::int8 AS c, '$1 stays text' AS d, $4::int8 AS e")
        let row = try #require(try await connection.query(sql).first)
        #expect(try row.decode((Int, String, Int, String, Int).self) == (7, hostile, 12, "$1 stays text", 8))
    }
}
