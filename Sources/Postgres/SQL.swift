import Foundation

/// A parameterised SQL statement.
///
/// Built by string interpolation: every interpolated value becomes a `$n` parameter, sent apart
/// from the text, so values can never change what the statement does.
///
///     let sql: SQL = "SELECT id FROM depot.messages WHERE store = \(store) LIMIT \(limit)"
///
/// Raw text (an identifier that was validated elsewhere) goes in only through
/// `\(unsafeRaw: text)`, a name that makes a reviewer stop.
public struct SQL: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    /// The statement text with `$1…$n` placeholders.
    public private(set) var text: String
    /// The bound values, in placeholder order. Never logged.
    public private(set) var bindings: [Binding]
    /// Where each placeholder's `$` is in `text` (UTF-8 offsets, in binding order), so that the
    /// statement can be interpolated into another and renumbered there without reading its text.
    private(set) var placeholderOffsets: [Int]

    /// One parameter: its type and binary value (`nil` is SQL NULL).
    public struct Binding: Sendable {
        public let type: PostgresType
        public let bytes: [UInt8]?
    }

    public init(stringLiteral value: String) {
        text = value
        bindings = []
        placeholderOffsets = []
    }

    public init(stringInterpolation: Interpolation) {
        text = stringInterpolation.text
        bindings = stringInterpolation.bindings
        placeholderOffsets = stringInterpolation.placeholderOffsets
    }

    /// Wraps text that has no parameters and comes from a trusted place (a migration file, a literal).
    public init(unsafeSQL text: String) {
        self.text = text
        bindings = []
        placeholderOffsets = []
    }

    public struct Interpolation: StringInterpolationProtocol {
        var text = ""
        var bindings: [Binding] = []
        var placeholderOffsets: [Int] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            text.reserveCapacity(literalCapacity + interpolationCount * 3)
        }

        public mutating func appendLiteral(_ literal: String) { text += literal }

        /// Binds a value as the next `$n` parameter.
        /// An empty Optional becomes SQL NULL.
        public mutating func appendInterpolation<T: PostgresEncodable>(_ value: T) {
            guard !value.isNullValue else { return bind(Binding(type: T.postgresType, bytes: nil)) }
            var bytes: [UInt8] = []
            value.encode(into: &bytes)
            bind(Binding(type: T.postgresType, bytes: bytes))
        }

        /// Binds an optional value; `nil` becomes SQL NULL. (Spelled out so optionals need no cast.)
        public mutating func appendInterpolation<T: PostgresEncodable>(_ value: T?) {
            guard let value else { return bind(Binding(type: T.postgresType, bytes: nil)) }
            appendInterpolation(value)
        }

        /// Inserts text verbatim. Only for identifiers and fragments that were validated or are constants.
        public mutating func appendInterpolation(unsafeRaw text: String) { self.text += text }

        /// Inserts another statement, a piece shared by several: its text, with its parameters
        /// bound here and renumbered to follow the ones before it.
        public mutating func appendInterpolation(_ fragment: SQL) {
            let utf8 = Array(fragment.text.utf8)
            var from = 0
            for (offset, binding) in zip(fragment.placeholderOffsets, fragment.bindings) {
                text += String(decoding: utf8[from..<offset], as: UTF8.self)
                bind(binding)
                from = offset + 1
                while from < utf8.count, (48...57).contains(utf8[from]) { from += 1 }  // the digits of its "$n"
            }
            text += String(decoding: utf8[from...], as: UTF8.self)
        }

        mutating func bind(_ binding: Binding) {
            bindings.append(binding)
            placeholderOffsets.append(text.utf8.count)
            text += "$\(bindings.count)"
        }
    }

    /// `parts` one after another with `separator` between them (a list of values, of
    /// conditions), each part's parameters bound and renumbered in order.
    public static func joined(_ parts: [SQL], separator: String = ", ") -> SQL {
        var joined = Interpolation(literalCapacity: 0, interpolationCount: parts.count)
        for (index, part) in parts.enumerated() {
            if index > 0 { joined.appendLiteral(separator) }
            joined.appendInterpolation(part)
        }
        return SQL(stringInterpolation: joined)
    }

    /// The statement text only; parameter values are redacted.
    public var description: String { bindings.isEmpty ? text : "\(text) [\(bindings.count) parameters]" }
}

/// Quotes an identifier (a schema, table or channel name) for use in SQL text.
public func quoteIdentifier(_ name: String) -> String {
    "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
