import Depot
import Foundation
import Postgres
import Testing
import TestSupport

@Suite("Schema snapshot")
struct SchemaSnapshotTests {
    @Test("Sources/Depot/Schema/schema.sql is what the migrations leave (regenerate with scripts/schema-snapshot)")
    func snapshotMatchesTheMigrations() async throws {
        let configuration = try await TestDatabase.createEmpty()
        let connection = try await Connection.connect(configuration)
        defer { connection.close() }
        _ = try await Migrator().migrate(on: connection)
        let live = try await SchemaSnapshot.text(on: connection)
        let file = packageRoot.appendingPathComponent("Sources/Depot/Schema/schema.sql")
        let committed = try String(contentsOf: file, encoding: .utf8)
        let liveLines = live.split(separator: "\n", omittingEmptySubsequences: false)
        let committedLines = committed.split(separator: "\n", omittingEmptySubsequences: false)
        if let line = zip(liveLines, committedLines).enumerated().first(where: { $0.element.0 != $0.element.1 }) {
            Issue.record("""
                schema.sql line \(line.offset + 1) differs from what the migrations leave; run scripts/schema-snapshot and commit it.
                migrations: \(line.element.0)
                schema.sql: \(line.element.1)
                """)
        }
        #expect(liveLines.count == committedLines.count, "schema.sql has \(committedLines.count) lines, the migrations leave \(liveLines.count); run scripts/schema-snapshot")
        // It names what a reader looks for: the claim index and the consumer API's claim.
        #expect(committed.contains("CREATE INDEX messages_claim_order"))
        #expect(committed.contains("CREATE OR REPLACE FUNCTION depot.claim("))
    }
}
