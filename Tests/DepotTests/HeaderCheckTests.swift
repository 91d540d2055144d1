import Depot
import Foundation
import Postgres
import Testing
import TestSupport

/// depot.messages checks that headers are an object of strings: on every stored message and on
/// every claim, since a claim writes a new version of the row (why 0005 rewrote it as one expression).
@Suite("The headers check")
struct HeaderCheckTests {
    @Test("headers are an object whose values are all strings; anything else is refused by name", arguments: [
        (#"{}"#, true), (#"{"a": "b"}"#, true), (#"{"a": "b", "c": ""}"#, true),
        (#"{"a": 1}"#, false), (#"{"a": ["x"]}"#, false), (#"{"a": {"b": "c"}}"#, false), (#"{"a": null}"#, false),
        (#"{"a": "b", "c": true}"#, false), (#"[]"#, false), (#"["x"]"#, false), (#""s""#, false), (#"1"#, false), (#"null"#, false),
    ])
    func headersMustBeStrings(headers: String, accepted: Bool) async throws {
        let pool = try await TestDatabase.shared()
        let name = try await TestDatabase.declareStore(on: pool)
        do {
            try await pool.query("SELECT depot.store(\(name), 'x', headers => \(headers)::jsonb)")
            #expect(accepted, "\(headers) was stored")
        } catch let error as PostgresError {
            #expect(!accepted, "\(headers) was refused: \(error.message)")
            #expect(error.message.contains("messages_headers_are_strings"), "\(error.message)")
        }
    }

    /// A SQL function that PostgreSQL cannot inline runs a query of its own for every row it
    /// checks; one that it inlines is an expression. EXPLAIN VERBOSE shows which.
    @Test("the check is an expression PostgreSQL inlines, not a query per row")
    func checkIsInlined() async throws {
        let pool = try await TestDatabase.shared()
        let plan = try await pool.query("""
            EXPLAIN (VERBOSE, COSTS OFF) SELECT depot.headers_are_strings(m.headers) FROM depot.messages m
            """).map { try $0.decode(at: 0, as: String.self) }.joined(separator: "\n")
        #expect(!plan.contains("headers_are_strings"), "not inlined:\n\(plan)")
        #expect(plan.contains("jsonb_path_exists"), "\(plan)")
    }

    /// A constraint that calls a SQL function has it inlined anew, its body parsed, for every
    /// statement that writes the table (0024): the constraints spell the expression out.
    @Test("both tables' constraints are the expression itself, not a call", arguments: [
        "messages_headers_are_strings", "group_messages_headers_are_strings",
    ])
    func constraintCallsNoFunction(constraint: String) async throws {
        let pool = try await TestDatabase.shared()
        let definition = try await pool.query("""
            SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
            WHERE c.conname = \(constraint) AND c.connamespace = 'depot'::regnamespace
            """).first?.decode(at: 0, as: String.self)
        let spelled = try #require(definition, "no constraint \(constraint)")
        #expect(!spelled.contains("headers_are_strings"), "\(spelled)")
        #expect(spelled.contains("@?"), "\(spelled)")
    }
}
