import Depot
import Foundation
import Postgres
import Testing
import TestSupport

/// Names from files and command lines put into SQL and shell text that a person will run.
@Suite("Quoting in dry-run SQL and hints")
struct HostileQuotingTests {
    static func psql(_ url: String, _ script: String) async throws -> ProcessOutput {
        try await runProcess(URL(fileURLWithPath: "/usr/bin/psql"), ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"], input: Data(script.utf8))
    }

    static func names(_ url: String) async throws -> [String] {
        let pool = ConnectionPool(ConnectionConfiguration(url), maximumConnections: 1)
        defer { Task { await pool.close() } }
        return try await pool.query("""
            SELECT 'store ' || name || ' ' || kind FROM depot.stores
            UNION ALL SELECT 'processor ' || name || ' ' || kind || ' ' || store FROM depot.processors
            UNION ALL SELECT 'table depot.messages ' || CASE WHEN to_regclass('depot.messages') IS NULL THEN 'missing' ELSE 'present' END
            ORDER BY 1
            """).map { try $0.decode(at: 0, as: String.self) }
    }

    @Test("import-synapse --dry-run with a newline in a parameter name and quotes in names, piped into psql, does exactly what the import does")
    func dryRunIsSafeInPsql() async throws {
        let xml = """
            <definitions xmlns="http://ws.apache.org/ns/synapse">
              <messageStore name="orders'x" class="org.apache.synapse.message.store.impl.jms.JmsStore">
                <parameter name="&#10;DROP TABLE depot.messages CASCADE;&#10;--">1</parameter>
                <parameter name="&#13;\\! touch /tmp/depot-quoting-psql&#10;">1</parameter>
              </messageStore>
              <messageProcessor name="fwd'); DROP TABLE depot.stores; --" class="org.apache.synapse.message.processor.impl.sampler.SamplingProcessor" messageStore="orders'x">
                <parameter name="sequence">seq</parameter>
              </messageProcessor>
            </definitions>
            """
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("hostile-\(UUID().uuidString.prefix(8)).xml")
        try Data(xml.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let dry = try await DepotCLI.fresh()
        let output = try await dry.run("import-synapse", "--dry-run", file.path)
        #expect(output.status == 0, "\(output.stderr)")
        let piped = try await Self.psql(dry.databaseURL, output.stdout)
        #expect(piped.status == 0, "psql: \(piped.stderr)\n\(output.stdout)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/depot-quoting-psql"))
        let real = try await DepotCLI.fresh()
        let imported = try await real.run("import-synapse", file.path)
        #expect(imported.status == 0, "\(imported.stderr)")
        let (fromDryRun, fromImport) = (try await Self.names(dry.databaseURL), try await Self.names(real.databaseURL))
        #expect(fromDryRun == fromImport)
        #expect(fromDryRun.contains("table depot.messages present"), "\(fromDryRun)")
        #expect(fromDryRun.contains("store orders'x postgres"), "\(fromDryRun)")
    }

    @Test("the hints for an undeclared store quote its name for the shell and for SQL: running them declares exactly that name and runs nothing")
    func hintsAreQuoted() async throws {
        let cli = try await DepotCLI.fresh()
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("depot-hint-\(UUID().uuidString.prefix(8))").path
        let name = "x'$(touch \(marker))'"
        let refused = try await cli.run("store", name, "--data", "x")
        #expect(refused.status == 65, "\(refused.stderr)")
        let shellHint = try #require(refused.stderr.firstMatch(of: /depot stores add (.*) \(or INSERT/)?.1, "\(refused.stderr)")
        let ran = try await runProcess(URL(fileURLWithPath: "/bin/sh"), ["-c", "\"$DEPOT\" stores add \(shellHint)"],
                                       environment: ["DEPOT": depotExecutable.path, "DEPOT_DATABASE_URL": cli.databaseURL])
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(!FileManager.default.fileExists(atPath: marker), "the shell hint ran the name's command")
        let sqlHint = try #require(refused.stderr.firstMatch(of: /(INSERT INTO depot.stores \(name\) VALUES \(.*\))\)/)?.1, "\(refused.stderr)")
        let other = try await DepotCLI.fresh()
        #expect(try await Self.psql(other.databaseURL, String(sqlHint) + ";").status == 0)
        #expect(try await Self.names(cli.databaseURL).contains("store \(name) postgres"))
        #expect(try await Self.names(other.databaseURL).contains("store \(name) postgres"))
    }
}
