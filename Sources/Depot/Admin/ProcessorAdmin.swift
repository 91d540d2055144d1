import Foundation
import Postgres

/// One row of `depot.processor_status`.
public struct ProcessorStatus: Sendable, Equatable, Codable {
    public var name: String
    public var kind: ProcessorKind
    public var store: String
    public var active: Bool
    /// Why it is inactive (an operator's reason, or what a node ran into).
    public var deactivatedReason: String?
    /// Live nodes running it → members on each.
    public var nodes: [String: Int]
    /// Outcomes over the last 5 minutes, summed over nodes.
    public var delivered5m: Int
    public var failed5m: Int
    public var deadLettered5m: Int
    /// The newest failure reason kept (an hour), and when.
    public var lastError: String?
    public var lastErrorAt: Date?

    enum CodingKeys: String, CodingKey {
        case name, kind, store, active, deactivatedReason, nodes, lastError, lastErrorAt
        // convertToSnakeCase would write delivered5m as "delivered5m"; spell the view's names.
        case delivered5m = "delivered_5m", failed5m = "failed_5m", deadLettered5m = "dead_lettered_5m"
    }
}

/// Reads processor status and switches processors on and off by name, through the SQL
/// functions operators use too (`depot.activate_processor`, `depot.deactivate_processor`).
public struct ProcessorAdmin: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) { self.pool = pool }

    /// `depot.processor_status`, by name; the first `limit` processors only (default nil: all).
    public func status(limit: Int? = nil) async throws -> [ProcessorStatus] {
        try await pool.query(ProcessorTable.processorStatusList(limit: limit)).map(ProcessorTable.status(from:))
    }

    /// Starts `name` on every node that may run it. Returns false when it was already active;
    /// throws `AdminError.notFound` when there is no such processor.
    @discardableResult
    public func activate(_ name: String) async throws -> Bool {
        try await AdminError.translating {
            try await pool.query(ProcessorTable.processorActivateByOperator(name)).first?.decode(at: 0) ?? false
        }
    }

    /// Stops `name` on every node, with `reason` for operators (default "deactivated by an operator").
    /// Returns false when it was already inactive (its reason is kept).
    @discardableResult
    public func deactivate(_ name: String, reason: String? = nil) async throws -> Bool {
        try await AdminError.translating {
            try await pool.query(ProcessorTable.processorDeactivateByOperator(name, reason: reason)).first?.decode(at: 0) ?? false
        }
    }
}
