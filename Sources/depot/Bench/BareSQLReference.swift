import Foundation

/// One bare-SQL figure measured with pgbench.
struct ReferenceFigure: Sendable, Codable {
    let key: String
    let description: String
    let messagesPerSecond: Double
}

/// Placeholder until the pgbench reference lands.
enum BareSQLReference {
    static func run(databaseURL: String, seconds: Int, progress: @Sendable (String) -> Void) async throws -> [ReferenceFigure] { [] }
}
