import Depot
import DepotHTTP
import DepotSynapse
import Foundation
import Postgres
import Testing
import TestSupport

/// Reads the documents into a configuration, as `depot import-synapse` does.
func synapseConfiguration(_ documents: [(String, String)]) throws -> SynapseConfiguration {
    var configuration = SynapseConfiguration()
    for (name, text) in documents { try configuration.read(Data(text.utf8), file: name) }
    return configuration
}

/// Maps the documents and writes them into the cluster's database.
@discardableResult
func importSynapse(_ documents: [(String, String)], into cluster: Cluster) async throws -> ImportPlan {
    let plan = SynapseMapping.plan(try synapseConfiguration(documents))
    try await SynapseImport(pool: cluster.pool).write(plan)
    return plan
}

/// The seeds' Synapse XML imported into a real PostgreSQL, checked column by column.
@Suite("Importing Synapse configuration")
struct SynapseImportTests {
    @Test("seed 002: a JMS store becomes a postgres store, three address endpoints, three forwarding processors")
    func seed002Rows() async throws {
        let cluster = try await Cluster.fresh()
        let plan = try await importSynapse(SynapseFixtures.seed002, into: cluster)
        #expect(plan.errors.isEmpty)
        let store = try #require(try await cluster.rows("SELECT kind, failover_store, guaranteed_delivery FROM depot.stores WHERE name = 'JMSMS'").first)
        let (kind, failover, guaranteed) = try store.decode((String, String?, Bool).self)
        #expect(kind == "postgres" && failover == nil && !guaranteed)
        let endpoints = try await cluster.rows("SELECT name, url, method, timeout_ms FROM depot.endpoints ORDER BY name")
            .map { try $0.decode((String, String, String, Int).self) }
        #expect(endpoints.map(\.0) == ["SimpleStockQuoteService1", "SimpleStockQuoteService2", "SimpleStockQuoteService3"])
        #expect(endpoints[1].1 == "http://localhost:9002/services/SimpleStockQuoteService")
        #expect(endpoints.allSatisfy { $0.2 == "POST" && $0.3 == 30000 })
        let processors = try await cluster.rows("""
            SELECT name, kind, store, target_endpoint, interval_ms, retry_interval_ms, is_active, member_count, max_delivery_attempts
            FROM depot.processors ORDER BY name
            """).map { try $0.decode((String, String, String, String, Int, Int, Bool, Int, Int).self) }
        #expect(processors.count == 3)
        for (index, row) in processors.enumerated() {
            #expect(row.0 == "Forwarder\(index + 1)" && row.1 == "forwarding" && row.2 == "JMSMS")
            #expect(row.3 == "SimpleStockQuoteService\(index + 1)")
            #expect(row.4 == 1000 && row.5 == 1000 && row.6 && row.7 == 1 && row.8 == 4)
        }
        let brokerNotes = plan.notes.filter { $0.message.contains("Depot keeps every store in its own PostgreSQL") && $0.subject.contains("parameter") }
        #expect(brokerNotes.count == 5, "one note per JMS parameter: \(brokerNotes)")
        #expect(plan.warnings.contains { $0.subject == "proxy StockQuoteProxy" && $0.message.contains("POST /stores/JMSMS/messages") })
    }

    @Test("seed 003: in-memory failover store, guaranteed delivery, forwarding and failover forwarding processors")
    func seed003Rows() async throws {
        let cluster = try await Cluster.fresh()
        let plan = try await importSynapse(SynapseFixtures.seed003, into: cluster)
        #expect(plan.errors.isEmpty)
        let stores = try await cluster.rows("SELECT name, kind, failover_store, guaranteed_delivery FROM depot.stores ORDER BY name")
            .map { try $0.decode((String, String, String?, Bool).self) }
        #expect(stores.map(\.0) == ["Orginal", "failover"])
        #expect(stores[0].1 == "postgres" && stores[0].2 == "failover" && stores[0].3)
        #expect(stores[1].1 == "memory" && stores[1].2 == nil && !stores[1].3)
        let forward = try #require(try await cluster.rows("""
            SELECT kind, store, target_endpoint, interval_ms, retry_interval_ms, max_delivery_attempts, max_delivery_drop, member_count
            FROM depot.processors WHERE name = 'ForwardMessageProcessor'
            """).first).decode((String, String, String, Int, Int, Int, Bool, Int).self)
        #expect(String(describing: forward) == #"("forwarding", "Orginal", "SimpleStockQuoteService", 1000, 1000, 4, false, 1)"#)
        let failover = try #require(try await cluster.rows("""
            SELECT kind, store, target_store, target_endpoint, retry_interval_ms, max_delivery_attempts, max_delivery_drop, is_active
            FROM depot.processors WHERE name = 'FailoverMessageProcessor'
            """).first).decode((String, String, String, String?, Int, Int, Bool, Bool).self)
        #expect(String(describing: failover) == #"("failover-forwarding", "failover", "Orginal", nil, 60000, 1000, false, true)"#)
        let url: String = try await cluster.rows("SELECT url FROM depot.endpoints WHERE name = 'SimpleStockQuoteService'").first!.decode(at: 0)
        #expect(url == "http://127.0.0.1:9000/services/SimpleStockQuoteService")
    }

    @Test("seed 004: a RabbitMQ store, an http endpoint, and a sampling processor whose call-log-drop sequence becomes call:SettlePaymentEP")
    func seed004Rows() async throws {
        let cluster = try await Cluster.fresh()
        let plan = try await importSynapse([("seed004.xml", SynapseFixtures.seed004)], into: cluster)
        #expect(plan.errors.isEmpty)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.stores WHERE name = 'PaymentRequestMessageStore' AND kind = 'postgres'") == 1)
        let endpoint = try #require(try await cluster.rows("SELECT url, method FROM depot.endpoints WHERE name = 'SettlePaymentEP'").first)
            .decode((String, String).self)
        #expect(endpoint == ("http://localhost:9090/healthcare/payments", "POST"))
        let processor = try #require(try await cluster.rows("""
            SELECT kind, store, handler, interval_ms, concurrency, is_active FROM depot.processors WHERE name = 'PaymentRequestProcessor'
            """).first).decode((String, String, String, Int, Int, Bool).self)
        #expect(processor == ("sampling", "PaymentRequestMessageStore", "call:SettlePaymentEP", 1000, 1, true))
        #expect(plan.notes.contains { $0.severity == .note && $0.message.contains("stock handler call:SettlePaymentEP") })
        #expect(plan.notes.filter { $0.subject.contains("store.rabbitmq.") }.count == 7)
    }

    @Test("seed 000: the reference templates import without error; the unknown classes and parameters are warnings")
    func seed000Templates() async throws {
        let cluster = try await Cluster.fresh()
        let plan = try await importSynapse(SynapseFixtures.seed000, into: cluster)
        #expect(plan.errors.isEmpty)
        #expect(plan.stores.map(\.name) == ["string"] && plan.stores[0].kind == .postgres)
        #expect(plan.processors.isEmpty)
        let warnings = plan.warnings.map(\.description)
        #expect(warnings.contains { $0.contains("class className is not a store Depot knows") })
        #expect(warnings.contains { $0.contains("parameter string: unknown store parameter") })
        #expect(warnings.contains { $0.contains("text outside any <parameter>") })
        #expect(warnings.filter { $0.contains("class classname is not a processor Depot runs") }.count == 2)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.processors") == 0)
    }

    @Test("seed 001 is Spring Integration: the channel block as printed is malformed (an undeclared prefix on line 1, a mismatched tag on line 3); the aggregator is a warning")
    func seed001SpringXML() throws {
        func failure(_ text: String) -> MalformedXML? {
            do { _ = try synapseConfiguration([("channel.xml", text)]); return nil } catch { return error as? MalformedXML }
        }
        let asPrinted = try #require(failure(SynapseFixtures.seed001Channel))
        #expect(asPrinted.line == 1 && asPrinted.reason.contains("namespace prefix \"int\" is used without being declared"), "\(asPrinted)")
        let declared = SynapseFixtures.seed001Channel.replacingOccurrences(
            of: "<int:channel id=", with: "<int:channel xmlns:int=\"http://www.springframework.org/schema/integration\" id=")
        let mismatch = try #require(failure(declared))
        #expect(mismatch.line == 3 && mismatch.description.hasPrefix("channel.xml:3:"), "\(mismatch)")
        let plan = SynapseMapping.plan(try synapseConfiguration([("aggregator.xml", SynapseFixtures.seed001Aggregator)]))
        #expect(plan.stores.isEmpty && plan.processors.isEmpty && plan.endpoints.isEmpty)
        #expect(plan.warnings.count == 1)
        #expect(plan.warnings[0].subject == "int:aggregator" && plan.warnings[0].message.contains("not a Synapse element"))
    }

    @Test("seed 002 imported and run: a node spreads the messages over three back ends, each delivered once")
    func seed002Runs() async throws {
        let cluster = try await Cluster.fresh()
        let backEnds = try (1...3).map { _ in try Cluster.echo() }
        defer { backEnds.forEach { $0.0.stop() } }
        // The only change to the seed's XML: each endpoint's uri points at an echo back end on loopback.
        let documents = SynapseFixtures.seed002.map { name, text in
            var text = text
            for (index, (_, url)) in backEnds.enumerated() {
                text = text.replacingOccurrences(of: "http://localhost:900\(index + 1)/services/SimpleStockQuoteService", with: url)
            }
            return (name, text)
        }
        try await importSynapse(documents, into: cluster)
        let node = cluster.startNode("node-a")
        let ids = try await cluster.storeTexts("JMSMS", count: 30)
        // The seed's pace: each processor forwards one message a second.
        let delivered = try await eventually(timeout: .seconds(40), every: .milliseconds(200)) {
            backEnds.map { $0.0.snapshot().succeeded }.reduce(0, +) >= 30
        }
        try await node.stop()
        #expect(delivered)
        var seen: [String: Int] = [:]
        for (echo, _) in backEnds { seen.merge(echo.snapshot().byMessage, uniquingKeysWith: +) }
        #expect(Set(seen.keys) == Set(ids.map { $0.uuidString.lowercased() }))
        #expect(seen.values.allSatisfy { $0 == 1 }, "some message was delivered more than once")
        for (echo, _) in backEnds { #expect(echo.snapshot().requests >= 5, "a back end got only \(echo.snapshot().requests) of 30") }
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 0)
    }

    @Test("unknown elements, parameters, classes, placeholders and endpoint types are warnings, not silently dropped")
    func unknownThingsWarn() throws {
        let xml = #"""
            <definitions xmlns="http://ws.apache.org/ns/synapse">
              <messageStore name="orders" class="org.apache.synapse.message.store.impl.jdbc.JDBCMessageStore">
                <parameter name="store.jdbc.connection.url">jdbc:mysql://localhost:3306/mi</parameter>
                <parameter name="store.mystery">1</parameter>
                <widget/>
              </messageStore>
              <endpoint name="lb"><loadbalance><endpoint key="a"/><endpoint key="b"/></loadbalance></endpoint>
              <endpoint name="env"><address uri="$SYSTEM:BACKEND_URL"/></endpoint>
              <messageProcessor name="custom" class="com.example.MyProcessor" messageStore="orders"/>
              <messageProcessor name="audit" class="org.apache.synapse.message.processor.impl.sampler.SamplingProcessor" messageStore="orders">
                <parameter name="sequence">enrichAndIndex</parameter>
                <parameter name="interval">$SYSTEM:AUDIT_INTERVAL</parameter>
                <parameter name="frobnicate">yes</parameter>
                <parameter name="cronExpression">0 0/5 9-17 ? * MON-FRI</parameter>
              </messageProcessor>
              <sequence name="enrichAndIndex"><enrich/><call><endpoint key="index"/></call></sequence>
              <api name="Orders" context="/orders"/>
            </definitions>
            """#
        let plan = SynapseMapping.plan(try synapseConfiguration([("mixed.xml", xml)]))
        #expect(plan.errors.isEmpty)
        let warnings = plan.warnings.map(\.description)
        for expected in ["store.mystery: unknown store parameter", "<widget>: unknown element inside messageStore",
                         "endpoint lb: a loadbalance endpoint is not imported", "endpoint env: uri \"$SYSTEM:BACKEND_URL\" holds a placeholder",
                         "messageProcessor custom: class com.example.MyProcessor is not a processor", "parameter interval: \"$SYSTEM:AUDIT_INTERVAL\" is a property placeholder",
                         "parameter frobnicate: unknown processor parameter", "api Orders: Depot runs no Synapse api",
                         "sequence enrichAndIndex is Synapse mediation Depot cannot run; mapped to handler \"enrichAndIndex\""] {
            #expect(warnings.contains { $0.contains(expected) }, "no warning containing \(expected): \(warnings)")
        }
        #expect(plan.notes.contains { $0.severity == .note && $0.subject.contains("store.jdbc.connection.url") })
        let audit = try #require(plan.processors.first)
        #expect(audit.handler == "enrichAndIndex" && audit.intervalMilliseconds == 1000)
        #expect(audit.cron == "0 0/5 9-17 ? * 1-5")
        #expect(plan.endpoints.isEmpty)
        #expect(warnings.allSatisfy { $0.hasPrefix("warning: mixed.xml:") })
    }

    @Test("Quartz cron: day-of-week 1 is Sunday in Quartz and 0 in Depot; names become numbers; a '*' year is dropped")
    func quartzCron() throws {
        let xml = { (cron: String) in
            """
            <messageProcessor name="p" class="org.apache.synapse.message.processor.impl.sampler.SamplingProcessor" messageStore="s">
              <parameter name="sequence">log</parameter><parameter name="cronExpression">\(cron)</parameter>
            </messageProcessor>
            """
        }
        for (quartz, depot) in [("0 0 12 ? * 2", "0 0 12 ? * 1"), ("0 15 10 ? * MON-FRI *", "0 15 10 ? * 1-5"),
                                ("0/10 * * * * ?", "0/10 * * * * ?"), ("0 0 8 1 JAN,JUL ?", "0 0 8 1 1,7 ?"), ("0 0 0 ? * 1,7", "0 0 0 ? * 0,6")] {
            let plan = SynapseMapping.plan(try synapseConfiguration([("p.xml", xml(quartz))]))
            #expect(plan.processors.first?.cron == depot, "\(quartz)")
            _ = try CronSchedule(depot)
        }
    }

    @Test("a row the database refuses names the element and the column, and nothing is written")
    func refusedRowWritesNothing() async throws {
        let cluster = try await Cluster.fresh()
        let xml = #"""
            <definitions>
              <messageStore name="orders" class="org.apache.synapse.message.store.impl.jms.JmsStore"/>
              <endpoint name="billing"><address uri="http://billing.internal/orders"/></endpoint>
              <messageProcessor name="fwd" class="org.apache.synapse.message.processor.impl.forwarder.ScheduledMessageForwardingProcessor"
                                messageStore="orders" targetEndpoint="billing">
                <parameter name="cronExpression">0 61 * * * ?</parameter>
              </messageProcessor>
            </definitions>
            """#
        await #expect {
            try await importSynapse([("bad-cron.xml", xml)], into: cluster)
        } throws: { error in
            let text = String(describing: error)
            return text.hasPrefix("bad-cron.xml:5: messageProcessor fwd: the database refused it: processors.cron")
                && text.contains("minute field \"61\" is outside 0-59") && text.hasSuffix("nothing was written")
        }
        #expect(try await cluster.integer("SELECT count(*) FROM depot.stores") == 0)
        #expect(try await cluster.integer("SELECT count(*) FROM depot.endpoints") == 0)
    }

    @Test("bad values and duplicate names are errors before anything is written")
    func planErrors() throws {
        let xml = #"""
            <definitions>
              <messageStore name="a"/><messageStore name="a"/>
              <messageProcessor name="p" class="org.apache.synapse.message.processor.impl.forwarder.ScheduledMessageForwardingProcessor" messageStore="a" targetEndpoint="e">
                <parameter name="interval">soon</parameter>
                <parameter name="max.delivery.drop">maybe</parameter>
                <parameter name="non.retry.status.codes">400, teapot</parameter>
              </messageProcessor>
            </definitions>
            """#
        let plan = SynapseMapping.plan(try synapseConfiguration([("errors.xml", xml)]))
        let errors = plan.errors.map(\.description)
        #expect(errors.count == 4, "\(errors)")
        #expect(errors.contains { $0.contains("messageStore a: is also defined at errors.xml:2") })
        #expect(errors.contains { $0.contains("parameter interval: \"soon\" is not a whole number") })
        #expect(errors.contains { $0.contains("\"maybe\" is not true/false") })
        #expect(errors.contains { $0.contains("\"teapot\" is not an HTTP status code") })
    }
}
