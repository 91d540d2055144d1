import Postgres

/// The NOLOGIN roles migration 0018 makes (see README, "Roles and privileges"): a migrating user
/// that may not create roles skips them, and `depot migrate` then says which are missing.
public enum DepotRoles {
    /// Producers: depot.store and depot.store_batch, into the stores depot.producer_stores allows.
    public static let producer = "depot_producer"
    /// What `depot node` needs.
    public static let node = "depot_node"
    /// Every row of every table; never the schema.
    public static let admin = "depot_admin"
    public static let all = [producer, node, admin]

    /// The roles of `all` that this cluster lacks, in that order.
    public static func missing(on connection: Connection) async throws -> [String] {
        let rows = try await connection.query("SELECT rolname FROM pg_roles WHERE rolname = ANY(\(all))")
        let present = Set(try rows.map { try $0.decode(at: 0, as: String.self) })
        return all.filter { !present.contains($0) }
    }
}
