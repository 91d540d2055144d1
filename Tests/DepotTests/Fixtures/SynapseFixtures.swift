import Foundation

/// The Synapse XML blocks of the seed documents (`/work/shared/seeds/`), one standalone document
/// each, as users bring them. Copied as printed; where a seed gives no XML, the comment says
/// where the block comes from.
enum SynapseFixtures {
    /// Seed 000: the reference page's templates, placeholders and markdown's `\*` as printed.
    static let seed000: [(String, String)] = [
        ("store-template.xml", #"""
        <messageStore name="string" class="className">
          <parameter name="string" > "string" </parameter>\*
        </messageStore>
        """#),
        ("forwarding-template.xml", #"""
        <messageProcessor class="classname" name="unique string" targetEndpoint="endpoint name" messageStore="associated message store name">
           <parameter name="string">"string"</parameter>*
        </messageProcessor>
        """#),
        ("sampling-template.xml", #"""
        <messageProcessor class="classname" name="unique string" messageStore="associated message store name">
           <parameter name="string">"string"</parameter>*
        </messageProcessor>
        """#),
    ]

    /// Seed 001 is Spring Integration, not Synapse. Its first block as printed is not well formed:
    /// the `int` prefix is never declared (line 1), and the channel is "closed" with a second
    /// opening tag (line 3).
    static let seed001Channel = #"""
        <int:channel id="myQueueChannel">
            <int:queue message-store="refToMessageStore"/>
        <int:channel><int:aggregator … message-store="refToMessageStore"/>
        """#

    /// Seed 001's aggregator (from the lazy-load example), with the `int` prefix declared: well
    /// formed, but no Synapse element in it.
    static let seed001Aggregator = #"""
        <int:aggregator xmlns:int="http://www.springframework.org/schema/integration"
                        input-channel="inputChannel"
                        output-channel="outputChannel"
                        message-store="mongoStore"
                        release-strategy-expression="size() == 1000"/>
        """#

    /// Seed 002: load balancing over three endpoints with three forwarding processors.
    static let seed002: [(String, String)] = [
        ("proxy.xml", #"""
        <proxy xmlns="http://ws.apache.org/ns/synapse" name="StockQuoteProxy"
                      transports="https http"
                      startOnLoad="true">
            <description/>
            <target>
               <inSequence>
                  <property name="FORCE_SC_ACCEPTED" value="true" scope="axis2"/>
                  <property name="OUT_ONLY" value="true"/>
                  <store messageStore="JMSMS"/>
               </inSequence>
               <outSequence/>
               <faultSequence/>
            </target>
         </proxy>
        """#),
        ("endpoint1.xml", #"""
        <endpoint xmlns="http://ws.apache.org/ns/synapse" name="SimpleStockQuoteService1">
          <address uri="http://localhost:9001/services/SimpleStockQuoteService"/>
        </endpoint>
        """#),
        ("endpoint2.xml", #"""
        <endpoint xmlns="http://ws.apache.org/ns/synapse" name="SimpleStockQuoteService2">
          <address uri="http://localhost:9002/services/SimpleStockQuoteService"/>
        </endpoint>
        """#),
        ("endpoint3.xml", #"""
        <endpoint xmlns="http://ws.apache.org/ns/synapse" name="SimpleStockQuoteService3">
          <address uri="http://localhost:9003/services/SimpleStockQuoteService"/>
        </endpoint>
        """#),
        ("store.xml", #"""
        <messageStore xmlns="http://ws.apache.org/ns/synapse" class="org.apache.synapse.message.store.impl.jms.JmsStore" name="JMSMS">
          <parameter name="java.naming.factory.initial">org.apache.activemq.jndi.ActiveMQInitialContextFactory</parameter>
          <parameter name="store.jms.cache.connection">false</parameter>
          <parameter name="java.naming.provider.url">tcp://localhost:61616</parameter>
          <parameter name="store.jms.JMSSpecVersion">1.1</parameter>
          <parameter name="store.jms.destination">JMSMS</parameter>
        </messageStore>
        """#),
        ("processor1.xml", #"""
        <messageProcessor xmlns="http://ws.apache.org/ns/synapse" class="org.apache.synapse.message.processor.impl.forwarder.ScheduledMessageForwardingProcessor"
                                 name="Forwarder1"
                                 targetEndpoint="SimpleStockQuoteService1"
                                 messageStore="JMSMS">
          <parameter name="client.retry.interval">1000</parameter>
          <parameter name="interval">1000</parameter>
          <parameter name="is.active">true</parameter>
        </messageProcessor>
        """#),
        ("processor2.xml", #"""
        <messageProcessor xmlns="http://ws.apache.org/ns/synapse" class="org.apache.synapse.message.processor.impl.forwarder.ScheduledMessageForwardingProcessor"
                                 name="Forwarder2"
                                 targetEndpoint="SimpleStockQuoteService2"
                                 messageStore="JMSMS">
          <parameter name="client.retry.interval">1000</parameter>
          <parameter name="interval">1000</parameter>
          <parameter name="is.active">true</parameter>
        </messageProcessor>
        """#),
        ("processor3.xml", #"""
        <messageProcessor xmlns="http://ws.apache.org/ns/synapse" class="org.apache.synapse.message.processor.impl.forwarder.ScheduledMessageForwardingProcessor"
                                 name="Forwarder3"
                                 targetEndpoint="SimpleStockQuoteService3"
                                 messageStore="JMSMS">
          <parameter name="client.retry.interval">1000</parameter>
          <parameter name="interval">1000</parameter>
          <parameter name="is.active">true</parameter>
        </messageProcessor>
        """#),
    ]

    /// Seed 003: guaranteed delivery with an in-memory failover store and a failover forwarding processor.
    static let seed003: [(String, String)] = [
        ("failover-store.xml", #"""
            <messageStore name="failover"/>
        """#),
        ("original-store.xml", #"""
             <messageStore
                 class="org.apache.synapse.message.store.impl.jms.JmsStore" name="Orginal">
                 <parameter name="store.failover.message.store.name">failover</parameter>
                 <parameter name="store.producer.guaranteed.delivery.enable">true</parameter>
                 <parameter name="java.naming.factory.initial">org.apache.activemq.jndi.ActiveMQInitialContextFactory</parameter>
                 <parameter name="java.naming.provider.url">tcp://localhost:61616</parameter>
                 <parameter name="store.jms.JMSSpecVersion">1.1</parameter>
               </messageStore>
        """#),
        ("proxy.xml", #"""
            <proxy name="Proxy1" transports="https http" startOnLoad="true" trace="disable" xmlns="http://ws.apache.org/ns/synapse">
              <target>
                <inSequence>
                 <property name="FORCE_SC_ACCEPTED" value="true" scope="axis2"/>
                 <property name="OUT_ONLY" value="true"/>
                 <log level="full"/>
                 <store messageStore="Orginal"/>
                </inSequence>
              </target>
             </proxy>
        """#),
        ("endpoint.xml", #"""
                    <endpoint name="SimpleStockQuoteService">
                      <address uri="http://127.0.0.1:9000/services/SimpleStockQuoteService"/>
                    </endpoint>
        """#),
        ("forwarder.xml", #"""
            <messageProcessor name="ForwardMessageProcessor" class="org.apache.synapse.message.processor.impl.forwarder.ScheduledMessageForwardingProcessor" targetEndpoint="SimpleStockQuoteService" messageStore="Orginal" xmlns="http://ws.apache.org/ns/synapse">
               <parameter name="interval">1000</parameter>
               <parameter name="client.retry.interval">1000</parameter>
               <parameter name="max.delivery.attempts">4</parameter>
               <parameter name="is.active">true</parameter>
               <parameter name="max.delivery.drop">Disabled</parameter>
               <parameter name="member.count">1</parameter>
            </messageProcessor>
        """#),
        ("failover-processor.xml", #"""
            <messageProcessor name="FailoverMessageProcessor" class="org.apache.synapse.message.processor.impl.failover.FailoverScheduledMessageForwardingProcessor" messageStore="failover" xmlns="http://ws.apache.org/ns/synapse">
               <parameter name="interval">1000</parameter>
               <parameter name="client.retry.interval">60000</parameter>
               <parameter name="max.delivery.attempts">1000</parameter>
               <parameter name="is.active">true</parameter>
               <parameter name="max.delivery.drop">Disabled</parameter>
               <parameter name="member.count">1</parameter>
               <parameter name="message.target.store.name">Orginal</parameter>
            </messageProcessor>
        """#),
    ]

    /// Seed 004 gives its artifacts as Integration Studio form tables, not XML. This is the XML
    /// those forms produce: the RabbitMQ store, the sequence (call SettlePaymentEP, log full,
    /// drop), and the sampling processor; SettlePaymentEP's URL is the tutorial's back end.
    static let seed004 = #"""
        <definitions xmlns="http://ws.apache.org/ns/synapse">
            <messageStore name="PaymentRequestMessageStore" class="org.apache.synapse.message.store.impl.rabbitmq.RabbitMQStore">
                <parameter name="store.rabbitmq.host.name">localhost</parameter>
                <parameter name="store.rabbitmq.host.port">5672</parameter>
                <parameter name="store.rabbitmq.queue.name">PaymentRequestJMSMessageStore</parameter>
                <parameter name="store.rabbitmq.exchange.name">exchange</parameter>
                <parameter name="store.rabbitmq.route.key">key</parameter>
                <parameter name="store.rabbitmq.username">user name</parameter>
                <parameter name="store.rabbitmq.password">password</parameter>
            </messageStore>
            <endpoint name="SettlePaymentEP">
                <http method="post" uri-template="http://localhost:9090/healthcare/payments"/>
            </endpoint>
            <sequence name="PaymentRequestProcessingSequence">
                <call>
                    <endpoint key="SettlePaymentEP"/>
                </call>
                <log category="INFO" level="full"/>
                <drop/>
            </sequence>
            <messageProcessor name="PaymentRequestProcessor" class="org.apache.synapse.message.processor.impl.sampler.SamplingProcessor" messageStore="PaymentRequestMessageStore">
                <parameter name="sequence">PaymentRequestProcessingSequence</parameter>
                <parameter name="is.active">true</parameter>
            </messageProcessor>
        </definitions>
        """#

    /// Writes documents into a fresh temporary folder; returns their paths in order.
    static func write(_ documents: [(String, String)]) throws -> [String] {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("synapse-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return try documents.map { name, text in
            let url = folder.appendingPathComponent(name)
            try Data(text.utf8).write(to: url)
            return url.path
        }
    }
}
