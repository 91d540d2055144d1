import Depot
import DepotSynapse
import Foundation
import Postgres
import Testing
import TestSupport

/// `depot import-synapse` run as a real process, as operators run it.
@Suite("depot import-synapse")
struct SynapseImportCLITests {
    @Test("imports seed 002's files: one line per object and the notes; a second import updates the same rows")
    func importsAndReimports() async throws {
        let cli = try await DepotCLI.fresh()
        let files = try SynapseFixtures.write(SynapseFixtures.seed002)
        let first = try await cli.run(["import-synapse"] + files)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("store JMSMS (postgres) ← messageStore JMSMS (org.apache.synapse.message.store.impl.jms.JmsStore)"))
        #expect(first.stdout.contains("processor Forwarder2 (forwarding) ← messageProcessor Forwarder2 (org.apache.synapse.message.processor.impl.forwarder.ScheduledMessageForwardingProcessor)"))
        #expect(first.stdout.contains("endpoint SimpleStockQuoteService3 (POST http://localhost:9003/services/SimpleStockQuoteService) ← endpoint SimpleStockQuoteService3 (address)"))
        #expect(first.stdout.contains("parameter java.naming.provider.url: not mapped: Depot keeps every store in its own PostgreSQL"))
        #expect(first.stdout.contains("imported 1 store, 3 endpoints, 3 processors (7 created, 0 updated); 1 warning"))

        let pool = ConnectionPool(ConnectionConfiguration(cli.databaseURL), maximumConnections: 1)
        defer { Task { await pool.close() } }
        try await pool.query("UPDATE depot.processors SET interval_ms = 5, batch_size = 7 WHERE name = 'Forwarder1'")
        let again = try await cli.run(["import-synapse"] + files)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("(0 created, 7 updated)"))
        let row = try #require(try await pool.query("SELECT interval_ms, batch_size FROM depot.processors WHERE name = 'Forwarder1'").first)
        #expect(try row.decode((Int, Int).self) == (1000, 7), "the file's interval comes back; batch_size, which Synapse lacks, is kept")
        #expect(try await pool.query("SELECT count(*) FROM depot.processors").first!.decode(at: 0, as: Int.self) == 3)
    }

    @Test("--dry-run prints the SQL and the notes and writes nothing; --json describes rows for scripts")
    func dryRunAndJSON() async throws {
        let cli = try await DepotCLI.fresh()
        let files = try SynapseFixtures.write(SynapseFixtures.seed003)
        let dry = try await cli.run(["import-synapse", "--dry-run"] + files)
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.hasPrefix("-- dry run: nothing was written"))
        #expect(dry.stdout.contains("UPDATE depot.stores SET failover_store = 'failover', guaranteed_delivery = true WHERE name = 'Orginal' RETURNING true;"))
        #expect(dry.stdout.contains("'FailoverMessageProcessor', 'failover-forwarding', 'failover', NULL, 'Orginal'"))
        let pool = ConnectionPool(ConnectionConfiguration(cli.databaseURL), maximumConnections: 1)
        defer { Task { await pool.close() } }
        for table in ["stores", "endpoints", "processors"] {
            #expect(try await pool.query(SQL(unsafeSQL: "SELECT count(*) FROM depot.\(table)")).first!.decode(at: 0, as: Int.self) == 0)
        }
        let json = try await cli.run(["import-synapse", "--dry-run", "--json"] + files)
        #expect(json.status == 0)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(report["dry_run"] as? Bool == true)
        let processors = try #require(report["processors"] as? [[String: Any]])
        let failover = try #require(processors.first { $0["name"] as? String == "FailoverMessageProcessor" })
        #expect(failover["target_store"] as? String == "Orginal" && failover["retry_interval_ms"] as? Int == 60000)
        let notes = try #require(report["notes"] as? [[String: Any]])
        #expect(notes.contains { $0["severity"] as? String == "warning" && $0["subject"] as? String == "proxy Proxy1" })
        let written = try await cli.run(["import-synapse", "--json"] + files)
        #expect(written.status == 0, "\(written.stderr)")
        let rows = try #require((try JSONSerialization.jsonObject(with: Data(written.stdout.utf8)) as? [String: Any])?["written"] as? [[String: Any]])
        #expect(rows.count == 5 && rows.allSatisfy { $0["created"] as? Bool == true })

        // The script is the import's own statements: run by psql on another database, it leaves
        // the very rows the import wrote.
        let other = try await DepotCLI.fresh()
        let script = try await runProcess(URL(fileURLWithPath: "/usr/bin/psql"), [other.databaseURL, "-X", "-q", "-v", "ON_ERROR_STOP=1"],
                                          input: Data(dry.stdout.utf8))
        #expect(script.status == 0, "\(script.stderr)")
        let otherPool = ConnectionPool(ConnectionConfiguration(other.databaseURL), maximumConnections: 1)
        defer { Task { await otherPool.close() } }
        for table in ["stores", "endpoints", "processors"] {
            let rows = SQL(unsafeSQL: "SELECT coalesce(jsonb_agg(to_jsonb(t) - 'created_at' - 'updated_at' ORDER BY t.name), '[]')::text FROM depot.\(table) t")
            let imported: String = try await pool.query(rows).first!.decode(at: 0)
            let scripted: String = try await otherPool.query(rows).first!.decode(at: 0)
            #expect(imported == scripted, "depot.\(table) after the script differs from after the import")
        }
    }

    @Test("exit statuses: 65 malformed XML with its line, 65 a refused row naming the element, 66 a missing file, 64 no file")
    func exitStatuses() async throws {
        let cli = try await DepotCLI.fresh()
        let files = try SynapseFixtures.write([
            ("broken.xml", "<messageStore name=\"a\">\n  <parameter name=\"x\">1</parameter>\n</messageStor>\n"),
            ("orphan.xml", """
                <messageProcessor name="fwd" class="org.apache.synapse.message.processor.impl.forwarder.ScheduledMessageForwardingProcessor"
                                  messageStore="orders" targetEndpoint="nowhere"/>
                """),
            ("store.xml", "<messageStore name=\"orders\"/>"),
        ])
        let malformed = try await cli.run("import-synapse", files[0])
        #expect(malformed.status == 65)
        #expect(malformed.stderr.contains("broken.xml:3:") && malformed.stderr.contains("closing tag does not match"), "\(malformed.stderr)")
        let refused = try await cli.run("import-synapse", files[2], files[1])
        #expect(refused.status == 65)
        #expect(refused.stderr.contains("orphan.xml:2: messageProcessor fwd: the database refused it: processors.target_endpoint names endpoint \"nowhere\""),
                "\(refused.stderr)")
        #expect(refused.stderr.contains("nothing was written"))
        let stores = try await cli.run("stores", "--json")
        #expect(stores.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[\n\n]" || !stores.stdout.contains("orders"), "\(stores.stdout)")
        let missing = try await cli.run("import-synapse", files[2], "/no/such/synapse.xml")
        #expect(missing.status == 66 && missing.stderr.contains("/no/such/synapse.xml: no such file"))
        #expect(try await cli.run("import-synapse").status == 64)
        let help = try await cli.run("import-synapse", "--help")
        #expect(help.status == 0 && help.stdout.contains("Usage: depot import-synapse") && help.stdout.contains("ON CONFLICT"))
    }
}

extension DepotCLI {
    func run(_ arguments: [String]) async throws -> ProcessOutput {
        try await runProcess(Self.binary, arguments, environment: ["DEPOT_DATABASE_URL": databaseURL])
    }
}
