import Foundation
import Postgres

/// One row of `depot.node_status`.
public struct NodeStatus: Sendable, Equatable, Codable {
    public var name: String
    public var host: String?
    public var pid: Int?
    public var version: String?
    public var startedAt: Date
    public var heartbeatAt: Date
    /// Whether it beat within 3 of its heartbeat intervals.
    public var alive: Bool
    /// Processor name → members running here, as of its last heartbeat.
    public var processors: [String: Int]
    /// Members over all its processors.
    public var members: Int
}

/// Reads `depot.node_status`: which nodes there are, whether they are alive and what they run.
public struct NodeCatalog: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) { self.pool = pool }

    /// Every registered node, by name; the first `limit` nodes only (default nil: all).
    public func status(limit: Int? = nil) async throws -> [NodeStatus] {
        try await pool.query(NodeRegistry.nodeStatusList(limit: limit)).map(NodeRegistry.status(from:))
    }
}
