import Depot
import Foundation
import Postgres

/// A LOGIN role made for one test, a member of the roles it names, and a pool connecting as it.
/// Roles belong to the whole test server, so each gets a unique name; `drop()` removes it.
public struct LoginRole: Sendable {
    public let name: String
    /// The URL of the test database, with this role as user.
    public let url: String
    public let pool: ConnectionPool
    let admin: ConnectionPool

    /// Drops the role (best effort: the test's answer does not depend on it).
    public func drop() async {
        await pool.close()
        _ = try? await admin.query(SQL(unsafeSQL: "DROP ROLE IF EXISTS \(quoteIdentifier(name))"))
    }
}

extension Cluster {
    /// Creates `CREATE ROLE name LOGIN PASSWORD … IN ROLE memberOf` and a pool connecting as it.
    public func loginRole(_ prefix: String, memberOf roles: [String]) async throws -> LoginRole {
        let name = "\(prefix)_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(8).lowercased())"
        let password = UUID().uuidString
        let membership = roles.isEmpty ? "" : " IN ROLE " + roles.map(quoteIdentifier).joined(separator: ", ")
        try await pool.query(SQL(unsafeSQL: "CREATE ROLE \(quoteIdentifier(name)) LOGIN PASSWORD \(quoteLiteral(password))\(membership)"))
        var components = URLComponents(string: url)!
        components.user = name
        components.password = password
        let url = components.string!
        return LoginRole(name: name, url: url, pool: ConnectionPool(ConnectionConfiguration(url), maximumConnections: 4), admin: pool)
    }
}

/// `text` as a SQL string literal.
func quoteLiteral(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
