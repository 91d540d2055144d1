import Foundation

extension SQL {
    /// The statement with every parameter written in as a SQL literal, for a script a person
    /// reads or pipes into psql (`depot import-synapse --dry-run`): one statement, so the script
    /// and what runs cannot drift apart. What Depot runs is always the parameterised statement.
    /// Throws for a parameter whose type it does not write (bytea, timestamps).
    public func withLiterals() throws -> String {
        let utf8 = Array(text.utf8)
        var script = ""
        var from = 0
        for (offset, binding) in zip(placeholderOffsets, bindings) {
            script += String(decoding: utf8[from..<offset], as: UTF8.self)
            script += try Self.literal(binding)
            from = offset + 1
            while from < utf8.count, (48...57).contains(utf8[from]) { from += 1 }  // the digits of its "$n"
        }
        return script + String(decoding: utf8[from...], as: UTF8.self)
    }

    /// One bound value as a literal of the same type.
    static func literal(_ binding: Binding) throws -> String {
        guard let bytes = binding.bytes else { return "NULL" }
        let type = binding.type
        return try bytes.withUnsafeBytes { raw -> String in
            switch type {
            case .bool:
                return try Bool.decode(from: raw, type: type) ? "true" : "false"
            case .int2, .int4, .int8:
                // In parentheses when negative: -42::text would read as -(42::text).
                let value = try Int.decode(from: raw, type: type)
                return value < 0 ? "(\(value))" : String(value)
            case .float8:
                let value = try Double.decode(from: raw, type: type)
                guard value.isFinite else { return "'\(value)'::float8" }
                return value < 0 ? "(\(value))" : "\(value)"
            case .text, .varchar, .name, .bpchar:
                return quoteLiteral(try String.decode(from: raw, type: type))
            case .uuid:
                return quoteLiteral(try UUID.decode(from: raw, type: type).uuidString.lowercased()) + "::uuid"
            case .jsonb, .json:
                return quoteLiteral(try String.decode(from: raw, type: type)) + "::jsonb"
            case .int2Array, .int4Array, .int8Array:
                let values = try [Int].decode(from: raw, type: type)
                return "'{\(values.map(String.init).joined(separator: ","))}'::\(type == .int8Array ? "bigint" : "integer")[]"
            case .textArray, .varcharArray:
                let values = try [String].decode(from: raw, type: type)
                return values.isEmpty ? "'{}'::text[]" : "ARRAY[\(values.map(quoteLiteral).joined(separator: ", "))]::text[]"
            default:
                throw PostgresError(kind: .usage, message: "a \(type) parameter cannot be written as a SQL literal")
            }
        }
    }
}

/// Quotes text as a SQL string literal (standard_conforming_strings, PostgreSQL's default since 9.1:
/// only the quote is doubled).
public func quoteLiteral(_ text: String) -> String {
    "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
}
