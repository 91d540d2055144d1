import Foundation
import Postgres
import Testing
import TestSupport

/// `SQL.withLiterals()`: the script a person reads says what the parameterised statement does.
@Suite("SQL with literals")
struct SQLLiteralsTests {
    @Test("each parameter written as a literal gives PostgreSQL the same value as the bound parameter")
    func sameValues() async throws {
        let connection = try await Connection.connect(try await TestDatabase.shared().configuration)
        defer { connection.close() }
        let id = UUID()
        let statements: [SQL] = [
            "SELECT \("it's \"quoted\"; DROP TABLE x; --")::text",
            "SELECT \(String?.none)::text",
            "SELECT \(true)::text",
            "SELECT \(Int32(-42))::text",
            "SELECT \(Int(9_000_000_000))::text",
            "SELECT \(1.25)::text",
            "SELECT \(id)::text",
            "SELECT \(["a": "b's", "c": "\\n"])::text",
            "SELECT \([Int32(400), 422])::text",
            "SELECT \([Int32]())::text",
            "SELECT \(["node-a", "it's"])::text",
            "SELECT \([String]())::text",
        ]
        for statement in statements {
            let bound: String? = try await connection.query(statement).first?.decode(at: 0)
            let script = try statement.withLiterals()
            #expect(!script.contains("$1"), "\(script)")
            let literal: String? = try await connection.query(SQL(unsafeSQL: script)).first?.decode(at: 0)
            #expect(bound == literal, "\(script) gave \(literal ?? "NULL"), the parameter \(bound ?? "NULL")")
        }
        #expect(try SQL("SELECT \("a'b")").withLiterals() == "SELECT 'a''b'")
    }

    @Test("a type it does not write is refused, not guessed")
    func unwritable() {
        #expect(throws: PostgresError.self) { try SQL("SELECT \(Data([1, 2]))").withLiterals() }
    }
}
