import Depot
import Foundation
import Postgres
import Testing
import TestSupport

/// The aggregating processor's output_format: one released group as a JSON array, NDJSON or
/// the payloads concatenated.
@Suite("Aggregate output formats")
struct AggregateFormatTests {
    @Test("output_format ndjson and concatenated: one message per group, members in arrival order, each form's content type")
    func formats() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('lines'), ('chunks'), ('out');
            INSERT INTO depot.processors (name, kind, store, target_store, release_size, correlation_header, output_format, interval_ms, batch_size)
            VALUES ('to-ndjson', 'aggregating', 'lines', 'out', 3, 'Order', 'ndjson', 0, 10),
                   ('to-bytes', 'aggregating', 'chunks', 'out', 3, 'Order', 'concatenated', 0, 10);
            """)
        let node = cluster.startNode("node-a")
        _ = try await PostgresStore(name: "lines", pool: cluster.pool).store([
            OutgoingMessage(payload: Data("{\"n\": 1}".utf8), headers: ["Order": "j"], contentType: "application/json"),
            OutgoingMessage(payload: Data("two\nlines".utf8), headers: ["Order": "j"], contentType: "text/plain"),
            OutgoingMessage(payload: Data("[3]".utf8), headers: ["Order": "j"], contentType: "application/json"),
        ])
        _ = try await PostgresStore(name: "chunks", pool: cluster.pool).store(["ab", "c\n", "d"].map {
            OutgoingMessage(payload: Data($0.utf8), headers: ["Order": "c"], contentType: "text/csv")
        })
        let released = try await eventually { try await cluster.integer("SELECT count(*) FROM depot.messages WHERE store = 'out'") == 2 }
        #expect(released)
        try await node.stop()
        let rows = try await cluster.rows("""
            SELECT headers ->> 'Depot-Group', convert_from(payload, 'UTF8'), content_type FROM depot.messages WHERE store = 'out' ORDER BY 1
            """).map { try $0.decode((String, String, String).self) }
        #expect(rows.map(\.0) == ["c", "j"])
        #expect(rows.first?.1 == "abc\nd" && rows.first?.2 == "text/csv")
        #expect(rows.last?.1 == "{\"n\": 1}\n\"two\\nlines\"\n[3]\n" && rows.last?.2 == "application/x-ndjson")
    }

    @Test("an unknown output_format is refused by the database, naming the column; the default is json_array")
    func badFormatRefused() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('parts'), ('out')")
        do {
            try await cluster.sql("""
                INSERT INTO depot.processors (name, kind, store, target_store, release_size, output_format)
                VALUES ('agg', 'aggregating', 'parts', 'out', 10, 'xml')
                """)
            Issue.record("output_format 'xml' was accepted")
        } catch let error as PostgresError {
            #expect(error.sqlState == .checkViolation && error.message.contains("processors.output_format is 'xml'"), "\(error)")
        }
        try await cluster.sql("INSERT INTO depot.processors (name, kind, store, target_store, release_size) VALUES ('agg', 'aggregating', 'parts', 'out', 10)")
        #expect(try await cluster.rows("SELECT output_format FROM depot.processors").first?.decode(at: 0, as: String.self) == "json_array")
    }
}
