import Depot
import Foundation
import Postgres

let migrateCommand = Command(
    name: "migrate",
    summary: "Apply the pending schema migrations (compiled into depot), in order, each in a transaction.",
    notes: """
        Safe to run from several nodes at once (an advisory lock serialises them) and a no-op
        when the schema is up to date.
        """
) { arguments in
    _ = try arguments.positionals(exactly: 0, usage: "depot migrate")
    try await withDatabase { pool in
        let applied = try await pool.withConnection { try await Migrator().migrate(on: $0) }
        for migration in applied { print("applied \(String(format: "%04d", migration.version)) \(migration.name)") }
        let latest = Migration.all.map(\.version).max() ?? 0
        print(applied.isEmpty ? "schema is up to date (version \(latest))" : "schema is now at version \(latest)")
        let missing = try await pool.withConnection { try await DepotRoles.missing(on: $0) }
        if !missing.isEmpty {
            // Not a failure: the roles are optional hardening (migration 0018 explains why it skips them).
            FileHandle.standardError.write(Data(("depot migrate: roles \(missing.joined(separator: ", ")) do not exist (migration 0018 "
                + "makes them only when the migrating user may create roles); as a superuser or CREATEROLE user run "
                + "CREATE ROLE name NOLOGIN for each, then as this user SELECT depot.grant_roles() (README: Roles and privileges)\n").utf8))
        }
    }
}
