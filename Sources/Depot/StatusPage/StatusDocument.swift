import Foundation
import Postgres

/// What `GET /status.json` answers and the status page draws: every store's depth, every
/// processor's state and last 15 minutes, every node's heartbeat. Read with the admin readers
/// (`StoreCatalog`, `ProcessorAdmin`, `NodeCatalog`), at most `limit` of each, and a note says
/// when a list was cut; long reasons and errors are cut too, so the answer stays small.
struct StatusDocument: Encodable, Sendable {
    /// A processor's row of `depot.processor_status` and its per-minute outcomes.
    struct Processor: Encodable, Sendable {
        var status: ProcessorStatus
        var minutes: ProcessorMinutes

        enum CodingKeys: String, CodingKey { case minutes }

        func encode(to encoder: Encoder) throws {
            try status.encode(to: encoder)  // the view's columns, then "minutes" beside them
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(minutes, forKey: .minutes)
        }
    }

    /// A node's row of `depot.node_status` and how long ago it beat, by the database's clock.
    struct Node: Encodable, Sendable {
        var status: NodeStatus
        var heartbeatAgeSeconds: Double

        enum CodingKeys: String, CodingKey { case heartbeatAgeSeconds }

        func encode(to encoder: Encoder) throws {
            try status.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(heartbeatAgeSeconds, forKey: .heartbeatAgeSeconds)
        }
    }

    /// The node that answered.
    var node: String
    /// The database's time when it was read.
    var generatedAt: Date
    /// How often the page reads it again.
    var refreshSeconds: Int
    /// How many minutes each processor's plots cover.
    var minutes: Int
    var stores: [StoreStatistics]
    var processors: [Processor]
    var nodes: [Node]
    /// What was left out (a list over `limit`), for the page to say.
    var notes: [String]

    /// Most stores, processors and nodes one answer lists. Default 500.
    static let defaultLimit = 500
    /// Longest reason or error shown, in characters; the rest is cut with "…".
    static let textLimit = 1_000

    /// Reads the whole document: five statements, one after the other on the pool.
    static func read(pool: ConnectionPool, node: String, limit: Int = defaultLimit, minutes: Int = 15,
                     refreshSeconds: Int = 5) async throws -> StatusDocument {
        let generatedAt: Date = try await pool.query("SELECT now()").first?.decode(at: 0) ?? Date()
        var notes: [String] = []
        func cut<T>(_ rows: [T], _ what: String, command: String) -> [T] {
            guard rows.count > limit else { return rows }
            notes.append("more than \(limit) \(what): showing the first \(limit) by name (`\(command)` lists them all)")
            return Array(rows.prefix(limit))
        }
        let stores = cut(try await StoreCatalog(pool: pool).statistics(limit: limit + 1), "stores", command: "depot stats")
        let admin = ProcessorAdmin(pool: pool)
        let processors = cut(try await admin.status(limit: limit + 1), "processors", command: "depot processors")
        let series = try await admin.minutes(of: processors.map(\.name), count: minutes)
        let nodes = cut(try await NodeCatalog(pool: pool).status(limit: limit + 1), "nodes", command: "depot nodes")
        return StatusDocument(
            node: node, generatedAt: generatedAt, refreshSeconds: refreshSeconds, minutes: minutes, stores: stores,
            processors: processors.map { status in
                var status = status
                status.deactivatedReason = status.deactivatedReason.map(shortened)
                status.lastError = status.lastError.map(shortened)
                return Processor(status: status, minutes: series[status.name] ?? ProcessorMinutes(count: minutes))
            },
            nodes: nodes.map { Node(status: $0, heartbeatAgeSeconds: max(0, generatedAt.timeIntervalSince($0.heartbeatAt))) },
            notes: notes)
    }

    /// `text` up to `textLimit` characters, with "…" when cut.
    static func shortened(_ text: String) -> String {
        text.count <= textLimit ? text : String(text.prefix(textLimit)) + "…"
    }

    /// As JSON: snake_case keys, ISO 8601 times with milliseconds.
    func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        }
        return try encoder.encode(self)
    }
}
