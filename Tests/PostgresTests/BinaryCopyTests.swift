import Foundation
import Postgres
import Testing
import TestSupport

@Suite("COPY … FROM STDIN in binary format")
struct BinaryCopyTests {
    @Test("every type and NULL arrive as sent, and the number of rows copied comes back")
    func roundTrip() async throws {
        let connection = try await TestDatabase.connect()
        defer { connection.close() }
        try await connection.execute("""
            CREATE TEMP TABLE copied (n int4, big int8, id uuid, name text, body bytea, doc jsonb, at timestamptz, flag bool)
            """)
        // Text COPY would need every one of these escaped; binary sends them as they are.
        let hostile = "tab\tnewline\nback\\slash 'quote' \"double\" \\N é"
        let id = UUID()
        let at = Date(timeIntervalSince1970: 1_800_000_000.25)
        var rows = BinaryCopyRows(columns: 8)
        rows.startRow()
        rows.append(Int32(-7)); rows.append(Int.max); rows.append(id); rows.append(hostile)
        rows.append(Data([0, 1, 255])); rows.append(["k": hostile]); rows.append(at); rows.append(true)
        rows.startRow()
        rows.append(Int32?.none); rows.append(Int?.none); rows.append(UUID?.none); rows.append(String?.none)
        rows.append(Data()); rows.append(["a": "1", "b": "2"]); rows.append(Date?.none); rows.append(false)
        #expect(rows.count == 2)

        let copied = try await connection.copy("COPY copied FROM STDIN (FORMAT binary)", rows: rows)
        #expect(copied == 2)

        let back = try await connection.query("SELECT n, big, id, name, body, doc, at, flag FROM copied ORDER BY n NULLS LAST")
        #expect(back.count == 2)
        let first = back[0]
        #expect(try first.decode(at: 0, as: Int32.self) == -7)
        #expect(try first.decode(at: 1, as: Int.self) == Int.max)
        #expect(try first.decode(at: 2, as: UUID.self) == id)
        #expect(try first.decode(at: 3, as: String.self) == hostile)
        #expect(try first.decode(at: 4, as: Data.self) == Data([0, 1, 255]))
        #expect(try first.decode(at: 5, as: [String: String].self) == ["k": hostile])
        #expect(try first.decode(at: 6, as: Date.self) == at)
        #expect(try first.decode(at: 7, as: Bool.self) == true)
        let second = back[1]
        #expect(try second.decode(at: 0, as: Int32?.self) == nil)
        #expect(try second.decode(at: 3, as: String?.self) == nil)
        #expect(try second.decode(at: 4, as: Data.self) == Data())
        #expect(try second.decode(at: 5, as: [String: String].self) == ["a": "1", "b": "2"])
        #expect(try second.decode(at: 6, as: Date?.self) == nil)
    }

    @Test("rows larger than one send (3 × 1.5 MiB) arrive byte for byte")
    func largeRows() async throws {
        let connection = try await TestDatabase.connect()
        defer { connection.close() }
        try await connection.execute("CREATE TEMP TABLE big (n int4, body bytea)")
        var rows = BinaryCopyRows(columns: 2)
        var sent: [Data] = []
        for n in 0..<3 {
            let body = Data((0..<1_572_864).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ n) })
            sent.append(body)
            rows.startRow(); rows.append(Int32(n)); rows.append(body)
        }
        #expect(try await connection.copy("COPY big (n, body) FROM STDIN (FORMAT binary)", rows: rows) == 3)
        let back = try await connection.query("SELECT body FROM big ORDER BY n")
        #expect(try back.map { try $0.decode(at: 0, as: Data.self) } == sent)
    }

    @Test("a COPY that breaks a constraint copies nothing, says which row, and leaves the connection usable")
    func constraintViolation() async throws {
        let connection = try await TestDatabase.connect()
        defer { connection.close() }
        try await connection.execute("CREATE TEMP TABLE checked (n int4 CHECK (n > 0))")
        var rows = BinaryCopyRows(columns: 1)
        for n: Int32 in [1, 2, -3, 4] { rows.startRow(); rows.append(n) }
        let error = await #expect(throws: PostgresError.self) {
            try await connection.copy("COPY checked FROM STDIN (FORMAT binary)", rows: rows)
        }
        #expect(error?.kind == .server)
        #expect(error?.sqlState == SQLState("23514"))
        #expect(error?.message.contains("checked") == true)
        #expect(try await connection.query("SELECT count(*) FROM checked").first?.decode(at: 0, as: Int.self) == 0)
        #expect(try await connection.query("SELECT 1").first?.decode(at: 0, as: Int.self) == 1)
    }

    @Test("a COPY whose commit fails is a failure, though its CommandComplete came first, and the connection stays usable")
    func commitFailure() async throws {
        let connection = try await TestDatabase.connect()
        defer { connection.close() }
        // A deferred constraint trigger raises at commit: after the server has answered the COPY's
        // CommandComplete, at the Sync that commits it, exactly where a crash during the commit's
        // WAL flush would strike.
        try await connection.execute("CREATE TEMP TABLE refused_at_commit (v int4)")
        try await connection.execute("""
            CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'refused at commit'; END $$
            """)
        try await connection.execute("""
            CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON refused_at_commit
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse()
            """)
        var rows = BinaryCopyRows(columns: 1)
        rows.startRow(); rows.append(Int32(1))
        let error = await #expect(throws: PostgresError.self) {
            try await connection.copy("COPY refused_at_commit (v) FROM STDIN (FORMAT binary)", rows: rows)
        }
        #expect(error?.sqlState == .raiseException)
        #expect(error?.message.contains("refused at commit") == true)
        #expect(try await connection.query("SELECT count(*) FROM refused_at_commit").first?.decode(at: 0, as: Int.self) == 0)
        #expect(connection.isReusable)
    }

    @Test("a COPY given parameters, or a statement that is not COPY FROM STDIN, is refused and the connection stays usable")
    func misuse() async throws {
        let connection = try await TestDatabase.connect()
        defer { connection.close() }
        try await connection.execute("CREATE TEMP TABLE target (n int4)")
        var rows = BinaryCopyRows(columns: 1)
        rows.startRow(); rows.append(Int32(1))
        let withParameter = await #expect(throws: PostgresError.self) {
            try await connection.copy("COPY target FROM STDIN (FORMAT binary) -- \(1)", rows: rows)
        }
        #expect(withParameter?.kind == .usage)
        #expect(withParameter?.message.contains("no parameters") == true)
        let notCopy = await #expect(throws: PostgresError.self) {
            try await connection.copy("SELECT 1", rows: rows)
        }
        #expect(notCopy?.kind == .usage)
        #expect(notCopy?.message.contains("not one COPY") == true)
        let unknownTable = await #expect(throws: PostgresError.self) {
            try await connection.copy("COPY no_such_table FROM STDIN (FORMAT binary)", rows: rows)
        }
        #expect(unknownTable?.sqlState == SQLState("42P01"))
        // A COPY the other way is read out, and a text of two statements is refused; either way
        // the connection is idle again afterwards.
        try await connection.execute("INSERT INTO target VALUES (7), (8)")
        let copyOut = await #expect(throws: PostgresError.self) {
            try await connection.copy("COPY target TO STDOUT", rows: rows)
        }
        #expect(copyOut?.kind == .usage)
        #expect(try await connection.query("SELECT count(*) FROM target").first?.decode(at: 0, as: Int.self) == 2)
        let twoStatements = await #expect(throws: PostgresError.self) {
            try await connection.copy("COPY target FROM STDIN (FORMAT binary); COPY target FROM STDIN (FORMAT binary)", rows: rows)
        }
        #expect(twoStatements?.sqlState == SQLState("42601"), "one statement per text")
        #expect(try await connection.query("SELECT count(*) FROM target").first?.decode(at: 0, as: Int.self) == 2)
        #expect(try await connection.copy("COPY target FROM STDIN (FORMAT binary)", rows: rows) == 1)
    }
}
