import Foundation
import Testing
import TestSupport

/// `depot fuzz` against a real `depot node --http`: structured and random mutations of requests.
@Suite("HTTP fuzzing")
struct HTTPFuzzTests {
    struct Output: Decodable {
        struct Report: Decodable {
            let requests: Int
            let statuses: [String: Int]
            let created: Int
            let problems: [String]
        }
        let report: Report
        let summary: [String: String]
    }

    @Test("4,000 fuzzed requests: the node survives, answers only documented statuses, stores exactly what it accepted, and stays under 300 MiB")
    func fuzzedRequests() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('fuzz')")
        let node = try await cluster.startHTTPNodeProcess("node-a")
        defer { node.kill() }
        let before = node.memory
        let run = try await runProcess(depotExecutable, ["fuzz", "--port", String(node.port), "--requests", "4000", "--seed", "21",
                                                         "--pid", String(node.child.pid)],
                                       environment: ["DEPOT_DATABASE_URL": cluster.url])
        let output = try JSONDecoder().decode(Output.self, from: Data(run.stdout.utf8))
        let after = node.memory
        #expect(run.status == 0, "\(output.report.problems)")
        #expect(output.report.problems.isEmpty, "\(output.report.problems)")
        #expect(output.report.requests == 4000)
        #expect(output.report.statuses["202", default: 0] > 500, "too few valid requests got through: \(output.report.statuses)")
        #expect(output.report.statuses["500"] == nil)
        #expect(output.summary["stored"] == String(output.report.created))
        #expect(after.peak - before.resident < 300 << 20, "before \(before), after \(after)")
        print("fuzz: \(output.report.statuses), created \(output.report.created), \(output.summary), node before \(before), after \(after)")
    }
}
