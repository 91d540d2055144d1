import Foundation
import Testing
import TestSupport

/// The delivery promise under failure, with real processes: `depot chaos` runs node processes
/// with HTTP ingress and a journal failover, HTTP producers posting singles and batches of 64–120
/// (both insert paths: INSERT and COPY), and producers through the Swift `Producer`, while
/// PostgreSQL is crashed (immediate stop) 20 times and nodes are killed with -9. It exits 0 only
/// when every message answered 202 (or given a receipt) reached a back end.
@Suite("Chaos: PostgreSQL crashed and nodes killed while producers store")
struct ChaosTests {
    @Test("20 PostgreSQL crashes and repeated kill -9 of nodes: every 202 and every receipt delivered")
    func nothingAcceptedIsLost() async throws {
        let server = try await ThrowawayPostgres.start()
        defer { Task { await server.destroy() } }
        let pg = packageRoot.appendingPathComponent("scripts/pg").path
        let output = try await runProcess(depotExecutable, [
            "chaos", "--nodes", "2", "--duration", "40s", "--crashes", "20", "--kill-every", "4s", "--rate", "1000",
            "--drain-timeout", "90s",
            "--crash-command", "'\(pg)' crash '\(server.directory)'",
            "--restart-command", "'\(pg)' start '\(server.directory)' \(server.port)",
        ], environment: ["DEPOT_DATABASE_URL": server.url])
        let figures = Self.figures(output.stdout)
        #expect(output.status == 0, "depot chaos said: \(output.stdout)\n\(output.stderr.suffix(3000))")
        #expect(figures["lost"] == 0)
        #expect(figures["still waiting (PostgreSQL, journals)"] == 0)
        #expect(figures["PostgreSQL crashes"] == 20)
        #expect((figures["nodes killed (-9)"] ?? 0) >= 3)
        // Enough traffic that the crashes struck writes of every kind.
        #expect((figures["accepted (202 or receipt)"] ?? 0) >= 10_000, "\(output.stdout)")
    }

    /// The first number on each line of the report, by the line's name.
    static func figures(_ report: String) -> [String: Int] {
        var figures: [String: Int] = [:]
        for line in report.split(separator: "\n") {
            let parts = line.split(separator: "  ", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let number = Int(parts[1].prefix { $0.isNumber }) else { continue }
            figures[parts[0]] = number
        }
        return figures
    }
}
