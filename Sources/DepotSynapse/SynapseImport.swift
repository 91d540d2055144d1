import Depot
import Foundation
import Postgres

/// Why an import wrote nothing: the plan had errors, or the database refused a row. Each
/// problem names the element (file:line) it came from.
public struct ImportRefused: Error, Sendable, CustomStringConvertible {
    public var problems: [ImportNote]

    public init(problems: [ImportNote]) { self.problems = problems }

    public var description: String {
        let lines = problems.map { "\($0.location): \($0.subject): \($0.message)" }
        return lines.count == 1 ? "\(lines[0]); nothing was written"
            : "\(lines.count) problems; nothing was written:\n  " + lines.joined(separator: "\n  ")
    }
}

/// One row the import wrote, and whether it was new or replaced a row of the same name.
public struct WrittenRow: Sendable, Equatable, Codable {
    /// `stores`, `endpoints` or `processors`.
    public var table: String
    public var name: String
    public var created: Bool
}

/// Writes an `ImportPlan` in one transaction: stores, then endpoints, then processors; all or
/// nothing. A row whose name exists is updated to what the plan says (INSERT … ON CONFLICT DO
/// UPDATE), so importing the same files again changes nothing; rows the plan does not name are
/// left alone, and `processors.batch_size` keeps its value (Synapse has none).
public struct SynapseImport: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) { self.pool = pool }

    /// Writes `plan`; throws `ImportRefused` (nothing written) when the plan has errors or the
    /// database refuses a row, naming the element and the database's message.
    @discardableResult
    public func write(_ plan: ImportPlan) async throws -> [WrittenRow] {
        guard plan.errors.isEmpty else { throw ImportRefused(problems: plan.errors) }
        return try await pool.withTransaction { connection in try await Self.write(plan, on: connection) }
    }

    /// Writes `plan` on `connection`, inside the caller's transaction.
    public static func write(_ plan: ImportPlan, on connection: Connection) async throws -> [WrittenRow] {
        var written: [WrittenRow] = []
        for statement in plan.statements {
            let created = try await run(statement.source) { try await connection.query(statement.sql) }
            if let (table, name) = statement.writes { written.append(WrittenRow(table: table, name: name, created: created)) }
        }
        return written
    }

    /// Runs one row's statement; a refusal by the database becomes `ImportRefused` naming the element.
    /// A lost connection is rethrown as it is.
    private static func run(_ source: ImportSource, _ statement: () async throws -> Rows) async throws -> Bool {
        do {
            let rows = try await statement()
            guard let first = rows.first else {
                throw ImportRefused(problems: [ImportNote(.error, source.location, "\(source.element) \(source.name)", "the row vanished while importing")])
            }
            return try first.decode(at: 0)
        } catch let error as PostgresError where error.kind == .server && !error.isConnectionLoss {
            let message = "the database refused it: \(error.message)" + (error.hint.map { " (\($0))" } ?? "")
            throw ImportRefused(problems: [ImportNote(.error, source.location, "\(source.element) \(source.name)", message)])
        }
    }
}
