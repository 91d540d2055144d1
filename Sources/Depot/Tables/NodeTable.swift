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

/// Registers nodes, keeps their heartbeats and removes them, with every statement on
/// `depot.nodes` and its view `depot.node_status` (`nodeRegister`, `nodeHeartbeat`, …) below.
public struct NodeRegistry: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) { self.pool = pool }

    /// Registers `name` (taking over a row left by an earlier run of the same name), running nothing yet.
    /// - Parameter heartbeatInterval: how often it will beat; views call it alive within 3 of these. Default nil (5 s).
    public func register(_ name: String, host: String, pid: Int, version: String, heartbeatInterval: Duration? = nil) async throws {
        try await pool.query(Self.nodeRegister(name, host: host, pid: pid, version: version, heartbeatInterval: heartbeatInterval))
    }

    static func nodeRegister(_ name: String, host: String, pid: Int, version: String, heartbeatInterval: Duration?) -> SQL {
        let interval = heartbeatInterval.map { Int32(clamping: $0.milliseconds) }
        return """
            INSERT INTO depot.nodes (name, host, pid, version, heartbeat_interval_ms)
            VALUES (\(name), \(host), \(Int32(clamping: pid)), \(version), \(interval))
            ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid, version = excluded.version,
                started_at = now(), heartbeat_at = now(), processors = '{}',
                heartbeat_interval_ms = excluded.heartbeat_interval_ms
            """
    }

    /// Marks `name` alive now. Returns false when its row is gone (an operator removed it).
    @discardableResult
    public func heartbeat(_ name: String) async throws -> Bool {
        try await pool.query(Self.nodeAlive(name)).affectedRows == 1
    }

    /// Marks `name` alive now with what it runs (processor → members), and adds its processors'
    /// `activity` since the last beat to `depot.processor_stats`, pruning rows older than an hour.
    /// One statement, so a beat is all or nothing. Returns false when the node's row is gone
    /// (the activity is written all the same).
    @discardableResult
    public func heartbeat(_ name: String, running: [String: Int], heartbeatInterval: Duration,
                          activity: [ProcessorActivity]) async throws -> Bool {
        let rows = try await pool.query(Self.nodeHeartbeat(name, running: running, heartbeatInterval: heartbeatInterval,
                                                           activity: activity))
        return try rows.first?.decode(at: 0, as: Bool.self) ?? false
    }

    /// Why one statement with CTEs: the beat, the stats and the prune commit together, in one
    /// round trip per node and interval. The upsert adds to the minute's row (a node beats
    /// several times a minute); its error replaces the row's only when newer.
    static func nodeHeartbeat(_ name: String, running: [String: Int], heartbeatInterval: Duration,
                              activity: [ProcessorActivity]) -> SQL {
        let processors = (try? JSONB(encoding: running)) ?? JSONB("{}")
        let interval = Int32(clamping: heartbeatInterval.milliseconds)
        return """
            WITH beat AS (
                UPDATE depot.nodes SET heartbeat_at = now(), processors = \(processors), heartbeat_interval_ms = \(interval)
                WHERE name = \(name)
                RETURNING 1
            ),
            added AS (
                INSERT INTO depot.processor_stats AS ps (processor, node, minute, delivered, failed, dead_lettered,
                                                         last_error, last_error_at)
                SELECT a.processor, \(name), date_trunc('minute', now()), a.delivered, a.failed, a.dead_lettered,
                       a.last_error, a.last_error_at
                FROM unnest(\(activity.map(\.processor)), \(activity.map(\.delivered)), \(activity.map(\.failed)),
                            \(activity.map(\.deadLettered)), \(activity.map(\.lastError)), \(activity.map(\.lastErrorAt)))
                     AS a (processor, delivered, failed, dead_lettered, last_error, last_error_at)
                ON CONFLICT (processor, minute, node) DO UPDATE SET
                    delivered = ps.delivered + excluded.delivered,
                    failed = ps.failed + excluded.failed,
                    dead_lettered = ps.dead_lettered + excluded.dead_lettered,
                    last_error = CASE WHEN excluded.last_error_at >= ps.last_error_at OR ps.last_error_at IS NULL
                                      THEN coalesce(excluded.last_error, ps.last_error) ELSE ps.last_error END,
                    last_error_at = greatest(ps.last_error_at, excluded.last_error_at)
                RETURNING 1
            ),
            pruned AS (
                DELETE FROM depot.processor_stats WHERE minute < now() - interval '1 hour' RETURNING 1
            )
            SELECT EXISTS (SELECT 1 FROM beat)
            """
    }

    /// Removes `name`'s row: the node stopped cleanly.
    public func deregister(_ name: String) async throws {
        try await pool.query(Self.nodeDelete(name))
    }

    /// Every registered node.
    public func list() async throws -> [NodeRecord] {
        try await pool.query(Self.nodeList).map { row in
            let (name, host, pid, version, started, heartbeat) = try row.decode((String, String?, Int?, String?, Date, Date).self)
            return NodeRecord(name: name, host: host, pid: pid, version: version, startedAt: started, heartbeatAt: heartbeat)
        }
    }

    static func nodeAlive(_ name: String) -> SQL { "UPDATE depot.nodes SET heartbeat_at = now() WHERE name = \(name)" }

    static func nodeDelete(_ name: String) -> SQL { "DELETE FROM depot.nodes WHERE name = \(name)" }

    static let nodeList: SQL = "SELECT name, host, pid, version, started_at, heartbeat_at FROM depot.nodes ORDER BY name"

    /// The first `limit` nodes' status by name (nil: all), for `NodeCatalog`.
    static func nodeStatusList(limit: Int?) -> SQL {
        """
        SELECT name, host, pid, version, started_at, heartbeat_at, alive, processors, members
        FROM depot.node_status ORDER BY name LIMIT \(limit)
        """
    }

    static func status(from row: Row) throws -> NodeStatus {
        let (name, host, pid, version, started, heartbeat, alive, processors, members) =
            try row.decode((String, String?, Int?, String?, Date, Date, Bool, JSONB, Int).self)
        return NodeStatus(name: name, host: host, pid: pid, version: version, startedAt: started, heartbeatAt: heartbeat,
                          alive: alive, processors: try processors.decoded(as: [String: Int].self), members: members)
    }
}
