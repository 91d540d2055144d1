import Foundation
import Postgres

/// One row of `depot.nodes`.
public struct NodeRecord: Sendable, Equatable, Codable {
    public var name: String
    public var host: String?
    public var pid: Int?
    public var version: String?
    public var startedAt: Date
    public var heartbeatAt: Date
}

/// Registers nodes, keeps their heartbeats and removes them: the SQL seam for `depot.nodes`.
public struct NodeRegistry: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) { self.pool = pool }

    /// Registers `name` (taking over a row left by an earlier run of the same name).
    public func register(_ name: String, host: String, pid: Int, version: String) async throws {
        try await pool.query("""
            INSERT INTO depot.nodes (name, host, pid, version) VALUES (\(name), \(host), \(Int32(clamping: pid)), \(version))
            ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid, version = excluded.version,
                started_at = now(), heartbeat_at = now()
            """)
    }

    /// Marks `name` alive now. Returns false when its row is gone (an operator removed it).
    @discardableResult
    public func heartbeat(_ name: String) async throws -> Bool {
        try await pool.query("UPDATE depot.nodes SET heartbeat_at = now() WHERE name = \(name)").affectedRows == 1
    }

    /// Removes `name`'s row: the node stopped cleanly.
    public func deregister(_ name: String) async throws {
        try await pool.query("DELETE FROM depot.nodes WHERE name = \(name)")
    }

    /// Every registered node.
    public func list() async throws -> [NodeRecord] {
        try await pool.query("SELECT name, host, pid, version, started_at, heartbeat_at FROM depot.nodes ORDER BY name").map { row in
            let (name, host, pid, version, started, heartbeat) = try row.decode((String, String?, Int?, String?, Date, Date).self)
            return NodeRecord(name: name, host: host, pid: pid, version: version, startedAt: started, heartbeatAt: heartbeat)
        }
    }
}
