import Depot
import Foundation

/// Turns Synapse definitions into Depot rows: stores, endpoints, processors, and a note for
/// everything not mapped one to one. Pure: no database, so `--dry-run` and tests share it.
public enum SynapseMapping {
    /// Store classes Depot knows, and the store kind each becomes. Broker-backed stores become
    /// `postgres`: Depot keeps every store in its own PostgreSQL.
    public static let storeKinds: [String: StoreKind] = [
        "org.apache.synapse.message.store.impl.memory.InMemoryStore": .memory,
        "org.apache.synapse.message.store.impl.jms.JmsStore": .postgres,
        "org.apache.synapse.message.store.impl.rabbitmq.RabbitMQStore": .postgres,
        "org.apache.synapse.message.store.impl.jdbc.JDBCMessageStore": .postgres,
        "org.apache.synapse.message.store.impl.resequencer.ResequenceMessageStore": .postgres,
    ]

    /// Prefixes of broker connection parameters (JMS, RabbitMQ, JDBC) that have no Depot column.
    static let brokerParameterPrefixes = ["store.jms.", "store.rabbitmq.", "store.jdbc.", "java.naming.", "connectionfactory.",
                                          "transport.jms.", "rabbitmq."]

    /// The rows and notes for `configuration`. Problems that make a row impossible go to `errors`.
    public static func plan(_ configuration: SynapseConfiguration) -> ImportPlan {
        var plan = ImportPlan()
        plan.notes = configuration.notes
        for store in configuration.stores { if let row = map(store, into: &plan) { plan.stores.append(row) } }
        let resequenced = configuration.stores.filter { $0.className == ResequenceStore.className }
        for store in resequenced { ResequenceStore.map(store, into: &plan) }
        for endpoint in configuration.endpoints { if let row = map(endpoint, into: &plan) { plan.endpoints.append(row) } }
        let handlers = SequenceHandlers(sequences: configuration.sequences)
        for processor in configuration.processors {
            if let row = ProcessorMapping.map(processor, handlers: handlers, into: &plan) { plan.processors.append(row) }
        }
        ResequenceStore.repoint(&plan, stores: Set(resequenced.map(\.name)))
        ProcessorMapping.settleOrder(&plan)
        // Only rows that would be written can collide: a definition that is not imported takes no name.
        rejectDuplicates(plan.stores.map { ($0.name, $0.source.location) }, "messageStore", into: &plan)
        rejectDuplicates(plan.endpoints.map { ($0.name, $0.source.location) }, "endpoint", into: &plan)
        rejectDuplicates(plan.processors.map { ($0.name, $0.source.location) }, "messageProcessor", into: &plan)
        let referenced = Set(configuration.processors.flatMap { $0.parameters.filter { ProcessorMapping.sequenceParameters.contains($0.name) }.map(\.value) })
        for sequence in configuration.sequences where !referenced.contains(sequence.name) {
            plan.notes.append(ImportNote(.warning, sequence.location, "sequence \(sequence.name)",
                                         "not named by any imported processor; Depot runs no mediation, so it is not imported"))
        }
        return plan
    }

    private static func rejectDuplicates(_ names: [(String, XMLSourceLocation)], _ element: String, into plan: inout ImportPlan) {
        var first: [String: XMLSourceLocation] = [:]
        for (name, location) in names {
            if let earlier = first[name] {
                plan.errors.append(ImportNote(.error, location, "\(element) \(name)", "is also defined at \(earlier); give each a distinct name"))
            } else {
                first[name] = location
            }
        }
    }

    // MARK: - Stores

    static func map(_ store: SynapseMessageStore, into plan: inout ImportPlan) -> ImportedStore? {
        let subject = "messageStore \(store.name)"
        let className = store.className ?? "org.apache.synapse.message.store.impl.memory.InMemoryStore"
        var kind = storeKinds[className]
        if store.className == nil {
            plan.notes.append(ImportNote(.note, store.location, subject, "no class: Synapse's default in-memory store → kind memory (per node, not shared)"))
        }
        if kind == nil {
            kind = .postgres
            plan.notes.append(ImportNote(.warning, store.location, subject,
                                         "class \(className) is not a store Depot knows; made a postgres store (a custom store must conform to MessageStore in your own binary)"))
        } else if kind == .postgres {
            plan.notes.append(ImportNote(.note, store.location, subject,
                                         "\(className.split(separator: ".").last ?? "") → kind postgres: Depot keeps every store in its own PostgreSQL"))
        }
        var row = ImportedStore(name: store.name, kind: kind!, failoverStore: nil, guaranteedDelivery: false,
                                description: "imported from Synapse messageStore \(store.name) (\(className))",
                                source: ImportSource(element: "messageStore", name: store.name, type: className, location: store.location))
        for parameter in store.parameters {
            let subject = "\(subject) parameter \(parameter.name)"
            if Placeholder.holds(parameter.value) {
                plan.notes.append(Placeholder.note(parameter, subject))
                continue
            }
            switch parameter.name {
            case "store.failover.message.store.name":
                row.failoverStore = parameter.value.isEmpty ? nil : parameter.value
            case "store.producer.guaranteed.delivery.enable":
                if let value = Values.bool(parameter, subject, into: &plan) { row.guaranteedDelivery = value }
            case let name where name.hasPrefix("store.resequence.") && className == ResequenceStore.className:
                continue  // ResequenceStore maps them to the resequencing processor.
            case let name where name.hasPrefix("store.resequence."):
                plan.notes.append(ImportNote(.warning, parameter.location, subject, "not mapped: only a resequence message store resequences"))
            case let name where brokerParameterPrefixes.contains(where: name.hasPrefix):
                plan.notes.append(ImportNote(.note, parameter.location, subject, "not mapped: Depot keeps every store in its own PostgreSQL"))
            default:
                plan.notes.append(ImportNote(.warning, parameter.location, subject, "unknown store parameter; ignored"))
            }
        }
        return row
    }

    // MARK: - Endpoints

    static func map(_ endpoint: SynapseEndpoint, into plan: inout ImportPlan) -> ImportedEndpoint? {
        let subject = "endpoint \(endpoint.name)"
        let element = endpoint.element
        let kinds = element.children.filter { !["description", "property", "parameter"].contains($0.name) }
        for child in element.children where ["property", "parameter"].contains(child.name) {
            plan.notes.append(ImportNote(.warning, XMLSourceLocation(file: endpoint.location.file, line: child.line),
                                         "\(subject) <\(child.name) \(child.attributes["name"] ?? "")>",
                                         "not mapped: endpoint properties are Synapse mediation state; set depot.endpoints.headers for HTTP headers"))
        }
        guard let body = kinds.first, ["address", "http"].contains(body.name) else {
            let type = kinds.first?.name ?? (element.attributes["key"] != nil ? "key reference" : element.attributes["template"] != nil ? "template" : "empty")
            let advice = ["loadbalance", "failover"].contains(type)
                ? "; run one forwarding processor per member endpoint on the same store (each node shares the store's messages among them)" : ""
            plan.notes.append(ImportNote(.warning, endpoint.location, subject,
                                         "a \(type) endpoint is not imported: Depot delivers to one HTTP address per endpoint\(advice)"))
            return nil
        }
        for extra in kinds.dropFirst() {
            plan.notes.append(ImportNote(.warning, XMLSourceLocation(file: endpoint.location.file, line: extra.line), "\(subject) <\(extra.name)>",
                                         "a second endpoint definition inside one endpoint; ignored"))
        }
        let url = body.name == "address" ? body.attributes["uri"] : body.attributes["uri-template"]
        guard let url, !url.isEmpty else {
            plan.errors.append(ImportNote(.error, endpoint.location, subject, "<\(body.name)> has no \(body.name == "address" ? "uri" : "uri-template")"))
            return nil
        }
        if Placeholder.holds(url) || (body.name == "http" && url.contains("{")) {
            plan.notes.append(ImportNote(.warning, endpoint.location, subject,
                                         "uri \"\(url)\" holds a placeholder or template variable Depot does not resolve; not imported (insert the row with the real URL)"))
            return nil
        }
        var row = ImportedEndpoint(name: endpoint.name, url: url, method: "POST", timeoutMs: 30000,
                                   source: ImportSource(element: "endpoint", name: endpoint.name, type: body.name, location: endpoint.location))
        if body.name == "http", let method = body.attributes["method"] { row.method = method.uppercased() }
        for attribute in body.attributes.keys.sorted() where !["uri", "uri-template", "method"].contains(attribute) {
            plan.notes.append(ImportNote(.note, endpoint.location, "\(subject) \(body.name) \(attribute)=\"\(body.attributes[attribute]!)\"",
                                         "not mapped: Depot sends the stored payload as it is, with its content type"))
        }
        for child in body.children {
            let location = XMLSourceLocation(file: endpoint.location.file, line: child.line)
            switch child.name {
            case "timeout":
                if let duration = child.child("duration")?.text {
                    if let value = Int(duration), value >= 1 { row.timeoutMs = value } else {
                        plan.errors.append(ImportNote(.error, location, "\(subject) timeout duration", "\"\(duration)\" is not a whole number of milliseconds of 1 or more"))
                    }
                }
                if let action = child.child("responseAction")?.text {
                    plan.notes.append(ImportNote(.note, location, "\(subject) timeout responseAction \(action)",
                                                 "not mapped: a timeout is a failed attempt, retried by the processor's retry_interval_ms and max_delivery_attempts"))
                }
            case "suspendOnFailure", "markForSuspension", "retryConfig":
                plan.notes.append(ImportNote(.note, location, "\(subject) \(child.name)",
                                             "not mapped: Depot does not suspend endpoints; the processor retries after retry_interval_ms and deactivates (or drops) after max_delivery_attempts"))
            case "enableAddressing", "enableSec", "enableRM":
                plan.notes.append(ImportNote(.warning, location, "\(subject) \(child.name)", "not mapped: Depot sends plain HTTP (WS-* is not supported)"))
            default:
                plan.notes.append(ImportNote(.warning, location, "\(subject) <\(child.name)>", "unknown element; ignored"))
            }
        }
        return row
    }
}

/// Property placeholders (`$SYSTEM:NAME`, `$FILE:NAME`, `${name}`) that Synapse resolves when it
/// deploys; Depot does not resolve them.
enum Placeholder {
    static func holds(_ value: String) -> Bool {
        value.contains("$SYSTEM:") || value.contains("$FILE:") || value.contains("${") || value.contains("{$")
    }

    static func note(_ parameter: SynapseParameter, _ subject: String) -> ImportNote {
        ImportNote(.warning, parameter.location, subject,
                   "\"\(parameter.value)\" is a property placeholder Depot does not resolve; ignored (the column keeps its default)")
    }
}

/// Parsing parameter values; a value that is not what the parameter needs is an error.
enum Values {
    static func int(_ parameter: SynapseParameter, _ subject: String, into plan: inout ImportPlan) -> Int? {
        guard let value = Int(parameter.value.trimmingCharacters(in: .whitespaces)), value >= Int(Int32.min), value <= Int(Int32.max) else {
            plan.errors.append(ImportNote(.error, parameter.location, subject, "\"\(parameter.value)\" is not a whole number"))
            return nil
        }
        return value
    }

    static func bool(_ parameter: SynapseParameter, _ subject: String, into plan: inout ImportPlan) -> Bool? {
        switch parameter.value.trimmingCharacters(in: .whitespaces).lowercased() {
        case "true", "enabled", "enable", "yes": return true
        case "false", "disabled", "disable", "no": return false
        default:
            plan.errors.append(ImportNote(.error, parameter.location, subject, "\"\(parameter.value)\" is not true/false (or Enabled/Disabled)"))
            return nil
        }
    }
}
