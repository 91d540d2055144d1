import Depot
import DepotHTTP
import DepotSynapse
import Foundation
import Postgres
import Testing
import TestSupport

/// Synapse's resequence message store imported as a resequencing processor (issue 24).
@Suite("Importing Synapse's resequence message store")
struct SynapseResequenceImportTests {
    /// A resequence store with `path` and `timeout` (nil: no parameter), its JDBC parameters, an
    /// endpoint, and a forwarding processor on the store.
    static func configuration(path: String, timeout: String? = "2", endpoint: String = "http://127.0.0.1:9/in") -> String {
        """
        <definitions xmlns="http://ws.apache.org/ns/synapse">
          <messageStore name="RS" class="org.apache.synapse.message.store.impl.resequencer.ResequenceMessageStore">
            \(timeout.map { "<parameter name=\"store.resequence.timeout\">\($0)</parameter>" } ?? "")
            <parameter xmlns:m0="http://services.samples" name="store.resequence.id.path" expression="\(path)"/>
            <parameter name="store.jdbc.driver">com.mysql.jdbc.Driver</parameter>
            <parameter name="store.jdbc.connection.url">jdbc:mysql://localhost:3306/resequenceDB</parameter>
          </messageStore>
          <endpoint name="ledger"><address uri="\(endpoint)"/></endpoint>
          <messageProcessor name="Forwarder" class="org.apache.synapse.message.processor.impl.forwarder.ScheduledMessageForwardingProcessor"
                            messageStore="RS" targetEndpoint="ledger">
            <parameter name="interval">1000</parameter>
          </messageProcessor>
        </definitions>
        """
    }

    @Test("$trp:Seq-No and a timeout of 2: a resequencing processor into RS/in-order (whole store one sequence, gap_timeout_ms 2000), the forwarder moved there; shuffled messages reach the back end in order")
    func transportHeaderEndToEnd() async throws {
        let cluster = try await Cluster.fresh()
        let backEnd = try RecordingBackEnd()
        defer { backEnd.stop() }
        let plan = try await importSynapse([("rs.xml", Self.configuration(path: "$trp:Seq-No", endpoint: backEnd.url))], into: cluster)
        #expect(plan.errors.isEmpty, "\(plan.errors)")
        #expect(plan.notes.contains { $0.subject == "messageStore RS parameter store.resequence.timeout" && $0.message.hasPrefix("2 → gap_timeout_ms 2000") })
        #expect(plan.notes.contains { $0.subject == "messageProcessor Forwarder" && $0.message.contains("consumes store RS/in-order") })
        #expect(plan.sqlScript.contains("'Seq-No', 2000, 'RS'"), "the dry run's SQL names the resequencing columns")

        let stores = try await cluster.rows("SELECT name, kind FROM depot.stores ORDER BY name").map { try $0.decode((String, String).self) }
        #expect(stores.map { "\($0.0) \($0.1)" } == ["RS postgres", "RS/in-order postgres"])
        let rows = try await cluster.rows("""
            SELECT name, kind, store, target_store, sequence_header, gap_timeout_ms, correlation_key, correlation_header, interval_ms
            FROM depot.processors ORDER BY name
            """).map { try $0.decode((String, String, String, String?, String?, Int?, String?, String?, Int).self) }
        #expect(rows.count == 2)
        let (name, kind, store, target, header, timeout, key, correlationHeader, interval) = rows[1]
        #expect(name == "RS-resequencer" && kind == "resequencing" && store == "RS" && target == "RS/in-order")
        #expect(header == "Seq-No" && timeout == 2000 && key == "RS" && correlationHeader == nil && interval == 0)
        #expect(rows[0].0 == "Forwarder" && rows[0].1 == "forwarding" && rows[0].2 == "RS/in-order")

        // Producers store into RS with only the number, no group key or correlation header.
        try await cluster.sql("UPDATE depot.processors SET interval_ms = 0 WHERE name = 'Forwarder'")
        let node = cluster.startNode("node-a")
        var random = SeededRandom(seed: 5)
        let messages = (1...60).map { OutgoingMessage(payload: Data("m\($0)".utf8), headers: ["Seq-No": String($0)], contentType: "text/plain") }
        _ = try await PostgresStore(name: "RS", pool: cluster.pool).store(messages.shuffled(using: &random))
        let done = try await eventually(timeout: .seconds(30)) { backEnd.received.count >= 60 }
        try await node.stop()
        #expect(done, "delivered \(backEnd.received.count) of 60")
        #expect(backEnd.received.map { String(decoding: $0.body, as: UTF8.self) } == (1...60).map { "m\($0)" })
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 0)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.dead_letters") == 0)
        let group = try await cluster.rows("SELECT store, group_key, last_released_sequence FROM depot.message_groups")
        #expect(try group.map { try $0.decode((String, String, Int).self) }.map { "\($0.0) \($0.1) \($0.2)" } == ["RS RS 60"])
    }

    @Test("a transport property path maps to its header; a body XPath or JSON path and a context property are import errors saying what to do; a negative timeout waits for ever")
    func paths() throws {
        func plan(_ path: String, timeout: String? = "2") throws -> ImportPlan {
            SynapseMapping.plan(try synapseConfiguration([("rs.xml", Self.configuration(path: path, timeout: timeout))]))
        }
        for path in ["get-property('transport', 'Seq-No')", "get-property(&quot;transport&quot;,&quot;Seq-No&quot;)", "$trp:Seq-No"] {
            let mapped = try plan(path)
            #expect(mapped.errors.isEmpty, "\(path): \(mapped.errors)")
            #expect(mapped.processors.first { $0.kind == .resequencing }?.sequenceHeader == "Seq-No", "\(path)")
        }
        let refused: [(String, String)] = [
            ("json-eval($.order.seq)", "reads the message body"),
            ("substring-after(//m0:placeOrder/m0:order/m0:symbol,'-')", "cannot evaluate"),
            ("//m0:order/m0:seq", "reads the message body"),
            ("$ctx:seq", "message context property"),
            ("get-property('seq')", "message context property"),
        ]
        for (path, says) in refused {
            let errors = try plan(path).errors
            #expect(errors.count == 1, "\(path): \(errors)")
            let error = try #require(errors.first)
            #expect(error.subject == "messageStore RS parameter store.resequence.id.path" && error.message.contains(says)
                    && error.message.contains("set this parameter to $trp:Sequence-Number") && error.location.line == 4, "\(path): \(error)")
        }
        let forever = try plan("$trp:Seq-No", timeout: "-1")
        #expect(forever.errors.isEmpty && forever.processors.first { $0.kind == .resequencing }?.gapTimeoutMilliseconds == nil)
        #expect(forever.notes.contains { $0.message.hasPrefix("-1 → gap_timeout_ms NULL") })
        let none = try plan("$trp:Seq-No", timeout: nil)
        #expect(none.errors.isEmpty && none.notes.contains { $0.message.hasPrefix("no store.resequence.timeout → gap_timeout_ms NULL") })
        let bad = try plan("$trp:Seq-No", timeout: "soon")
        #expect(bad.errors.map(\.message) == ["\"soon\" is not a whole number"])
    }

    @Test("correlation_key is refused on another kind and beside correlation_header, naming the column")
    func correlationKeyRows() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('parts'), ('out')")
        let cases: [(String, String)] = [
            ("('agg', 'aggregating', 'parts', 'out', NULL, 'k')", "is set on an aggregating processor"),
            ("('seq', 'resequencing', 'parts', 'out', 'Stream', 'k')", "is set with correlation_header"),
            ("('seq', 'resequencing', 'parts', 'out', NULL, '')", "must be 1 to 200 characters"),
        ]
        for (values, says) in cases {
            do {
                try await cluster.sql("""
                    INSERT INTO depot.processors (name, kind, store, target_store, correlation_header, correlation_key, release_size)
                    VALUES \(values.dropLast()), 10)
                    """)
                Issue.record("a row \(values) was accepted")
            } catch let error as PostgresError {
                #expect(error.sqlState == .checkViolation && error.message.contains("processors.correlation_key") && error.message.contains(says),
                        "\(values) → \(error)")
            }
        }
    }
}
