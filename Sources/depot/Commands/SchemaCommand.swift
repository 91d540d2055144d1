import Depot
import Postgres

let schemaCommand = Command(
    name: "schema",
    summary: "Print the depot schema as it stands in the database: each table, view and function once, as SQL.",
    notes: """
        Migrations are forward-only, so a function restated by a later migration lives in several
        files; this shows the live one. Run `depot migrate` first to see what this depot's
        migrations leave. scripts/schema-snapshot writes it to Sources/Depot/Schema/schema.sql.
        """
) { arguments in
    _ = try arguments.positionals(exactly: 0, usage: "depot schema")
    try await withDatabase { pool in
        print(try await pool.withConnection { try await SchemaSnapshot.text(on: $0) }, terminator: "")
    }
}
