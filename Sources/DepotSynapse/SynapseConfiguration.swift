import Depot
import Foundation

/// The Synapse namespace; elements in it, or in none, are read as Synapse configuration.
public let synapseNamespace = "http://ws.apache.org/ns/synapse"

/// A `<parameter name="…">value</parameter>` of a store or processor.
public struct SynapseParameter: Sendable, Equatable {
    public var name: String
    public var value: String
    public var location: XMLSourceLocation
    /// The `expression` attribute, which some parameters hold instead of text (a resequence
    /// store's `store.resequence.id.path`); nil when absent.
    public var expression: String? = nil
}

/// A `<messageStore name class>` definition.
public struct SynapseMessageStore: Sendable, Equatable {
    public var name: String
    /// nil when the attribute is absent: Synapse then uses its in-memory store.
    public var className: String?
    public var parameters: [SynapseParameter]
    public var location: XMLSourceLocation
}

/// A `<messageProcessor name class messageStore targetEndpoint>` definition.
public struct SynapseMessageProcessor: Sendable, Equatable {
    public var name: String
    public var className: String?
    public var messageStore: String?
    public var targetEndpoint: String?
    public var parameters: [SynapseParameter]
    public var location: XMLSourceLocation
}

/// A named `<endpoint>`; its child (`address`, `http`, `wsdl`, `loadbalance`…) says its type.
public struct SynapseEndpoint: Sendable, Equatable {
    public var name: String
    public var element: XMLElementNode
    public var location: XMLSourceLocation
}

/// A named `<sequence>`: mediation Depot does not run, read only to see whether it is a plain
/// call, log or drop that a stock handler does.
public struct SynapseSequence: Sendable, Equatable {
    public var name: String
    public var mediators: [XMLElementNode]
    public var location: XMLSourceLocation
}

/// Message stores, processors, endpoints and sequences read from Synapse XML files, and notes on
/// everything else in them.
public struct SynapseConfiguration: Sendable, Equatable {
    public var stores: [SynapseMessageStore] = []
    public var processors: [SynapseMessageProcessor] = []
    public var endpoints: [SynapseEndpoint] = []
    public var sequences: [SynapseSequence] = []
    /// Elements that are not imported (proxies, APIs, foreign XML…), and parts of imported ones
    /// that were not understood.
    public var notes: [ImportNote] = []

    public init() {}

    /// Reads one file's document: a `<definitions>` root, or one standalone definition.
    /// Throws `MalformedXML` with the file and line when the XML is not well formed.
    public mutating func read(_ data: Data, file: String) throws {
        let root = try XMLElementTree.parse(data, file: file)
        if isSynapse(root), root.name == "definitions" {
            root.children.forEach { readTopLevel($0, file: file) }
        } else {
            readTopLevel(root, file: file)
        }
    }

    /// Reads files from disk in order. Throws `CocoaError(.fileNoSuchFile)` for a missing one.
    public static func read(files: [String]) throws -> SynapseConfiguration {
        var configuration = SynapseConfiguration()
        for file in files {
            try configuration.read(try Data(contentsOf: URL(fileURLWithPath: file)), file: file)
        }
        return configuration
    }

    private func isSynapse(_ element: XMLElementNode) -> Bool {
        element.namespace == nil || element.namespace == synapseNamespace
    }

    private mutating func readTopLevel(_ element: XMLElementNode, file: String) {
        let location = XMLSourceLocation(file: file, line: element.line)
        guard isSynapse(element) else {
            notes.append(ImportNote(.warning, location, element.qualifiedName,
                                    "not a Synapse element (namespace \(element.namespace ?? "none")); not imported"))
            return
        }
        let name = element.attributes["name"]
        switch element.name {
        case "messageStore", "messageProcessor", "endpoint", "sequence":
            guard let name, !name.isEmpty else {
                notes.append(ImportNote(.warning, location, element.name, "has no name attribute; not imported"))
                return
            }
            switch element.name {
            case "messageStore":
                stores.append(SynapseMessageStore(name: name, className: element.attributes["class"],
                                                  parameters: parameters(of: element, file: file), location: location))
                unexpectedAttributes(element, allowed: ["name", "class"], file: file)
            case "messageProcessor":
                processors.append(SynapseMessageProcessor(
                    name: name, className: element.attributes["class"], messageStore: element.attributes["messageStore"],
                    targetEndpoint: element.attributes["targetEndpoint"], parameters: parameters(of: element, file: file), location: location))
                unexpectedAttributes(element, allowed: ["name", "class", "messageStore", "targetEndpoint"], file: file)
            case "endpoint":
                endpoints.append(SynapseEndpoint(name: name, element: element, location: location))
            default:
                sequences.append(SynapseSequence(name: name, mediators: element.children, location: location))
            }
        default:
            notes.append(ImportNote(.warning, location, describe(element), skippedReason(element)))
        }
    }

    /// The `<parameter>` children; anything else inside is reported.
    private mutating func parameters(of element: XMLElementNode, file: String) -> [SynapseParameter] {
        var found: [SynapseParameter] = []
        for child in element.children {
            let location = XMLSourceLocation(file: file, line: child.line)
            if child.name == "parameter", let name = child.attributes["name"] {
                found.append(SynapseParameter(name: name, value: child.text, location: location, expression: child.attributes["expression"]))
            } else if child.name == "description" {
                continue
            } else {
                notes.append(ImportNote(.warning, location, "\(element.name) \(element.attributes["name"] ?? "") <\(child.qualifiedName)>",
                                        "unknown element inside \(element.name); ignored"))
            }
        }
        if !element.text.isEmpty {
            notes.append(ImportNote(.warning, XMLSourceLocation(file: file, line: element.line), "\(element.name) \(element.attributes["name"] ?? "")",
                                    "text outside any <parameter> (\"\(element.text.prefix(40))\"); ignored"))
        }
        return found
    }

    private mutating func unexpectedAttributes(_ element: XMLElementNode, allowed: Set<String>, file: String) {
        for attribute in element.attributes.keys.sorted() where !allowed.contains(attribute) && !attribute.hasPrefix("xmlns") {
            notes.append(ImportNote(.warning, XMLSourceLocation(file: file, line: element.line),
                                    "\(element.name) \(element.attributes["name"] ?? "")", "unknown attribute \(attribute); ignored"))
        }
    }

    private func describe(_ element: XMLElementNode) -> String {
        element.attributes["name"].map { "\(element.name) \($0)" } ?? element.name
    }

    /// Why a top-level element other than a store, processor, endpoint or sequence is left out.
    private func skippedReason(_ element: XMLElementNode) -> String {
        switch element.name {
        case "proxy", "api", "inboundEndpoint":
            let stores = Self.storeMediators(in: element)
            let producers = stores.isEmpty ? "" : "; its <store messageStore=\"\(stores.joined(separator: "\", \""))\"> becomes a producer: "
                + "POST /stores/\(stores[0].addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? stores[0])/messages "
                + "on a node run with --http, depot store \(Quoting.shell(stores[0])), or depot.store(\(Quoting.sql(stores[0])), …)"
            return "Depot runs no Synapse \(element.name) (mediation); not imported\(producers)"
        case "localEntry", "registry", "taskManager", "task", "template", "import", "eventSource", "executor", "priorityExecutor":
            return "Depot has no equivalent of a Synapse \(element.name); not imported"
        default:
            return "unknown top-level element; not imported"
        }
    }

    /// The stores named by `<store messageStore="…">` mediators anywhere inside `element`.
    static func storeMediators(in element: XMLElementNode) -> [String] {
        var found: [String] = []
        for child in element.children {
            if child.name == "store", let store = child.attributes["messageStore"], !found.contains(store) { found.append(store) }
            for store in storeMediators(in: child) where !found.contains(store) { found.append(store) }
        }
        return found
    }
}
