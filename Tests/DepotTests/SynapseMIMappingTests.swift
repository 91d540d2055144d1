@testable import Depot
import DepotSynapse
import Foundation
import Postgres
import Testing
import TestSupport

/// How MI settings become the rows that behave as MI did (issue 23), each with its note.
@Suite("Importing MI's pace, order and sampling behaviour")
struct SynapseMIMappingTests {
    static let forwarder = "org.apache.synapse.message.processor.impl.forwarder.ScheduledMessageForwardingProcessor"
    static let sampler = "org.apache.synapse.message.processor.impl.sampler.SamplingProcessor"

    static func plan(_ body: String) throws -> ImportPlan {
        let xml = """
            <definitions xmlns="http://ws.apache.org/ns/synapse">
              <messageStore name="orders"/>
              <messageStore name="shared"/>
              <endpoint name="backend"><address uri="http://127.0.0.1:9/in"/></endpoint>
              \(body)
            </definitions>
            """
        return SynapseMapping.plan(try synapseConfiguration([("mi.xml", xml)]))
    }

    @Test("throttle with throttle.interval becomes rate_limit for the cluster; member.count is said to count per node; bind.processor.server pins")
    func throttleAndMembers() async throws {
        let plan = try Self.plan("""
            <messageProcessor name="paced" class="\(Self.forwarder)" messageStore="orders" targetEndpoint="backend">
              <parameter name="throttle">true</parameter>
              <parameter name="throttle.interval">200</parameter>
              <parameter name="member.count">3</parameter>
              <parameter name="bind.processor.server">node-b</parameter>
              <parameter name="max.store.connection.attempts">5</parameter>
              <parameter name="store.connection.retry.interval">2000</parameter>
            </messageProcessor>
            """)
        #expect(plan.errors.isEmpty)
        let row = try #require(plan.processors.first)
        #expect(row.rateLimit == 5)
        #expect(row.memberCount == 3)
        #expect(row.pinnedServers == ["node-b"])
        #expect(row.maxStoreConnectionAttempts == 5 && row.storeConnectionRetryIntervalMilliseconds == 2000)
        let notes = plan.notes.map(\.description)
        #expect(notes.contains { $0.contains("throttle.interval 200 ms between messages is rate_limit 5.0 messages per second") }, "\(notes)")
        #expect(notes.contains { $0.contains("member_count counts members on each node") })
        #expect(!plan.warnings.contains { $0.subject.contains("bind.processor.server") }, "bind.processor.server is known")

        // Written and read back as the node reads it.
        let cluster = try await Cluster.fresh()
        try await SynapseImport(pool: cluster.pool).write(plan)
        let definition = try #require(try await ProcessorCatalog(pool: cluster.pool).snapshot().processors.first)
        #expect(definition.rateLimit == 5 && definition.inOrder)
        #expect(definition.maxStoreConnectionAttempts == 5 && definition.storeConnectionRetryIntervalMilliseconds == 2000)
        #expect(SynapseMIMappingTests.dryRunHas(plan, "rate_limit"), "the dry-run SQL sets rate_limit")
    }

    @Test("a forwarding processor alone on its store is in order, with a note; processors sharing a store balance it and are not")
    func order() throws {
        let plan = try Self.plan("""
            <messageProcessor name="alone" class="\(Self.forwarder)" messageStore="orders" targetEndpoint="backend"/>
            <messageProcessor name="share-1" class="\(Self.forwarder)" messageStore="shared" targetEndpoint="backend"/>
            <messageProcessor name="share-2" class="\(Self.forwarder)" messageStore="shared" targetEndpoint="backend"/>
            """)
        let rows = Dictionary(uniqueKeysWithValues: plan.processors.map { ($0.name, $0) })
        #expect(rows["alone"]?.inOrder == true)
        #expect(rows["share-1"]?.inOrder == false && rows["share-2"]?.inOrder == false)
        let notes = plan.notes.map(\.description)
        #expect(notes.contains { $0.contains("alone") && $0.contains("in_order is on") })
        #expect(notes.contains { $0.contains("share-1") && $0.contains("in_order is off: 2 processors share store shared") })
    }

    @Test("an imported sampler dead-letters after its attempts instead of stopping the flow, unless max.delivery.drop is given")
    func sampler() throws {
        let plan = try Self.plan("""
            <messageProcessor name="sample" class="\(Self.sampler)" messageStore="orders"><parameter name="sequence">log</parameter></messageProcessor>
            <messageProcessor name="strict" class="\(Self.sampler)" messageStore="shared">
              <parameter name="sequence">log</parameter><parameter name="max.delivery.drop">false</parameter>
            </messageProcessor>
            """)
        let rows = Dictionary(uniqueKeysWithValues: plan.processors.map { ($0.name, $0) })
        #expect(rows["sample"]?.maxDeliveryDrop == true)
        #expect(rows["strict"]?.maxDeliveryDrop == false)
        #expect(plan.notes.contains { $0.description.contains("sample") && $0.description.contains("max_delivery_drop is on: MI's sampler never deactivates") })
    }

    @Test("throttle without an interval, or an interval without throttle, sets no rate and says so; a zero interval is an error")
    func incompleteThrottle() throws {
        let plan = try Self.plan("""
            <messageProcessor name="a" class="\(Self.forwarder)" messageStore="orders" targetEndpoint="backend"><parameter name="throttle">true</parameter></messageProcessor>
            <messageProcessor name="b" class="\(Self.forwarder)" messageStore="shared" targetEndpoint="backend"><parameter name="throttle.interval">100</parameter></messageProcessor>
            """)
        #expect(plan.processors.allSatisfy { $0.rateLimit == nil })
        #expect(plan.warnings.contains { $0.description.contains("throttle is on without throttle.interval") })
        #expect(plan.notes.contains { $0.description.contains("throttle.interval is ignored") })
        let zero = try Self.plan("""
            <messageProcessor name="z" class="\(Self.forwarder)" messageStore="orders" targetEndpoint="backend">
              <parameter name="throttle">true</parameter><parameter name="throttle.interval">0</parameter>
            </messageProcessor>
            """)
        #expect(zero.errors.contains { $0.description.contains("throttle.interval must be a positive number of milliseconds, got 0") })
    }

    static func dryRunHas(_ plan: ImportPlan, _ column: String) -> Bool {
        plan.sqlScript.contains(column)
    }
}
