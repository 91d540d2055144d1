import Depot
import Foundation

/// Where an imported definition was written: a file and the line of its element.
public struct XMLSourceLocation: Sendable, Equatable, Codable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }
    public var description: String { "\(file):\(line)" }
}

/// Something the import did not map one to one, and what it did instead.
public struct ImportNote: Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Severity: String, Sendable, Codable {
        /// Mapped, but not one to one (a sequence became a handler); the text says how.
        case note
        /// Unknown, unsupported or not mapped: left out, and the text says what happens instead.
        case warning
        /// A value no row can hold (a number that is not one, a name given twice): nothing is written.
        case error
    }
    public var severity: Severity
    public var location: XMLSourceLocation
    /// The element it is about, as written: `messageStore JMSMS`, `parameter java.naming.provider.url`.
    public var subject: String
    public var message: String

    public init(_ severity: Severity, _ location: XMLSourceLocation, _ subject: String, _ message: String) {
        self.severity = severity
        self.location = location
        self.subject = subject
        self.message = message
    }

    public var description: String { "\(severity): \(location): \(subject): \(message)" }
}

/// Where a row came from: the Synapse element, its name and class.
public struct ImportSource: Sendable, Equatable, Codable {
    /// `messageStore`, `messageProcessor` or `endpoint`.
    public var element: String
    public var name: String
    /// The Synapse class (stores, processors) or endpoint type (`address`, `http`).
    public var type: String
    public var location: XMLSourceLocation
}

/// A `depot.stores` row as the import writes it. Failover columns are set after every store exists.
public struct ImportedStore: Sendable, Equatable, Codable {
    public var name: String
    public var kind: StoreKind
    public var failoverStore: String?
    public var guaranteedDelivery: Bool
    public var description: String?
    public var source: ImportSource
}

/// A `depot.endpoints` row as the import writes it (headers are left as they are).
public struct ImportedEndpoint: Sendable, Equatable, Codable {
    public var name: String
    public var url: String
    public var method: String
    public var timeoutMs: Int
    public var source: ImportSource
}

/// A `depot.processors` row as the import writes it: the one row type, `ProcessorDefinition`,
/// with Synapse's defaults (which are Depot's), and where it came from. Its fields read through
/// (`row.intervalMilliseconds`). The import writes the columns Synapse has a parameter for
/// (`ProcessorTable.importedColumns`); the others (batch_size, the aggregator's) keep their values.
@dynamicMemberLookup
public struct ImportedProcessor: Sendable, Equatable, Codable {
    public var row: ProcessorDefinition
    public var source: ImportSource

    public init(name: String, kind: ProcessorKind, store: String, source: ImportSource) {
        row = ProcessorDefinition(name: name, kind: kind, store: store)
        self.source = source
    }

    public subscript<T>(dynamicMember keyPath: WritableKeyPath<ProcessorDefinition, T>) -> T {
        get { row[keyPath: keyPath] }
        set { row[keyPath: keyPath] = newValue }
    }

    private enum CodingKeys: String, CodingKey { case source }

    /// Flat, as the row's columns with `source` beside them.
    public func encode(to encoder: Encoder) throws {
        try row.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(source, forKey: .source)
    }

    public init(from decoder: Decoder) throws {
        row = try ProcessorDefinition(from: decoder)
        source = try decoder.container(keyedBy: CodingKeys.self).decode(ImportSource.self, forKey: .source)
    }
}

/// What an import writes, in dependency order (stores, endpoints, processors), and every note.
public struct ImportPlan: Sendable, Equatable, Codable {
    public var stores: [ImportedStore] = []
    public var endpoints: [ImportedEndpoint] = []
    public var processors: [ImportedProcessor] = []
    public var notes: [ImportNote] = []
    /// Problems that make a row impossible (a number that is not one, a name given twice).
    /// A plan with errors is never written.
    public var errors: [ImportNote] = []

    public init() {}

    public var warnings: [ImportNote] { notes.filter { $0.severity == .warning } }
}
