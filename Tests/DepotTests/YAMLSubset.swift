import Foundation

/// A value of the YAML subset that docker-compose.yml is written in.
enum YAMLValue: Sendable {
    case null
    case scalar(String)
    case list([YAMLValue])
    /// Entries in file order.
    case map([(key: String, value: YAMLValue)])

    subscript(key: String) -> YAMLValue? {
        guard case .map(let entries) = self else { return nil }
        return entries.first { $0.key == key }?.value
    }

    var string: String? {
        if case .scalar(let text) = self { return text }
        return nil
    }

    var items: [YAMLValue]? {
        if case .list(let items) = self { return items }
        return nil
    }

    /// A list's scalar items.
    var strings: [String]? { items?.compactMap { $0.string } }

    var entries: [(key: String, value: YAMLValue)]? {
        if case .map(let entries) = self { return entries }
        return nil
    }

    /// The same value as JSON-shaped Foundation objects (scalars stay strings), to compare with
    /// another reader's output.
    var plain: Any {
        switch self {
        case .null: return NSNull()
        case .scalar(let text): return text
        case .list(let items): return items.map(\.plain)
        case .map(let entries): return Dictionary(entries.map { ($0.key, $0.value.plain) }, uniquingKeysWith: { first, _ in first })
        }
    }
}

/// Why a text is not in the subset, with its line number.
struct YAMLSubsetError: Error, CustomStringConvertible {
    let line: Int
    let message: String
    var description: String { "line \(line): \(message)" }
}

/// Reads the YAML that docker-compose.yml uses, without a YAML library: block mappings and block
/// lists by indentation (spaces only), lists of mappings (`- key: value`), flow lists of scalars
/// (`["CMD", "pg_isready"]`), empty `{}` and `[]`, plain, 'single' and "double" quoted scalars,
/// and `#` comments. Everything else — anchors and aliases, merge keys, tags, block scalars
/// (`|`, `>`), flow mappings, multi-line plain scalars, several documents — is refused with its
/// line number rather than misread. Scalars stay strings: `5432`, `true` and `no` are text.
struct YAMLSubsetReader {
    private struct Line {
        let number: Int
        var indent: Int
        var text: String
    }

    private var lines: [Line] = []
    private var index = 0

    static func parse(_ text: String) throws -> YAMLValue {
        var reader = try YAMLSubsetReader(text)
        guard !reader.lines.isEmpty else { return .null }
        let value = try reader.block(indent: reader.lines[0].indent)
        if reader.index < reader.lines.count {
            throw YAMLSubsetError(line: reader.lines[reader.index].number, message: "unexpected indentation or a list item among mapping keys")
        }
        return value
    }

    private init(_ text: String) throws {
        for (offset, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = offset + 1
            let leading = raw.prefix { $0 == " " || $0 == "\t" }
            if leading.contains("\t") { throw YAMLSubsetError(line: number, message: "tab in indentation; indent with spaces") }
            let content = try Self.withoutComment(String(raw.dropFirst(leading.count)), line: number)
                .trimmingCharacters(in: .whitespaces)
            if content.isEmpty { continue }
            if content == "---" || content == "..." {
                throw YAMLSubsetError(line: number, message: "document markers are outside the subset: one document per file")
            }
            lines.append(Line(number: number, indent: leading.count, text: content))
        }
    }

    // MARK: - Blocks

    private mutating func block(indent: Int) throws -> YAMLValue {
        Self.isListItem(lines[index].text) ? try list(indent: indent) : try map(indent: indent)
    }

    private mutating func list(indent: Int) throws -> YAMLValue {
        var items: [YAMLValue] = []
        while index < lines.count, lines[index].indent == indent, Self.isListItem(lines[index].text) {
            let line = lines[index]
            let rest = String(line.text.dropFirst()).drop { $0 == " " }
            if rest.isEmpty {
                index += 1
                guard index < lines.count, lines[index].indent > indent else { items.append(.null); continue }
                items.append(try block(indent: lines[index].indent))
            } else if try Self.keyAndRest(String(rest), line: line.number) != nil {
                // `- key: value` opens a mapping whose keys line up with `key`.
                let column = indent + line.text.count - rest.count
                lines[index] = Line(number: line.number, indent: column, text: String(rest))
                items.append(try map(indent: column))
            } else {
                items.append(try Self.inline(String(rest), line: line.number))
                index += 1
            }
        }
        if index < lines.count, lines[index].indent > indent {
            throw YAMLSubsetError(line: lines[index].number, message: "unexpected indentation after a list item")
        }
        return .list(items)
    }

    private mutating func map(indent: Int) throws -> YAMLValue {
        var entries: [(key: String, value: YAMLValue)] = []
        while index < lines.count, lines[index].indent == indent, !Self.isListItem(lines[index].text) {
            let line = lines[index]
            guard let entry = try Self.keyAndRest(line.text, line: line.number) else {
                throw YAMLSubsetError(line: line.number, message: "expected KEY: VALUE, got \(line.text)")
            }
            let (key, rest) = entry
            if key == "<<" { throw YAMLSubsetError(line: line.number, message: "merge keys (<<) are outside the subset") }
            if entries.contains(where: { $0.key == key }) {
                throw YAMLSubsetError(line: line.number, message: "duplicate key \(key)")
            }
            index += 1
            let value: YAMLValue
            if !rest.isEmpty {
                value = try Self.inline(rest, line: line.number)
            } else if index < lines.count, lines[index].indent > indent
                        || (lines[index].indent == indent && Self.isListItem(lines[index].text)) {
                value = try block(indent: lines[index].indent)
            } else {
                value = .null
            }
            entries.append((key, value))
        }
        if index < lines.count, lines[index].indent > indent {
            throw YAMLSubsetError(line: lines[index].number, message: "unexpected indentation (a multi-line scalar?)")
        }
        return .map(entries)
    }

    // MARK: - Lines

    private static func isListItem(_ text: String) -> Bool { text == "-" || text.hasPrefix("- ") }

    /// For each character, whether it lies outside quotes. A quote opens only where a scalar
    /// starts (line start, after a space, `[` or `,`), so `it's` stays plain text.
    private static func outsideQuotes(_ characters: [Character], line: Int) throws -> [Bool] {
        var outside: [Bool] = []
        var quote: Character?
        var escaped = false
        for (offset, character) in characters.enumerated() {
            let previous: Character = offset == 0 ? " " : characters[offset - 1]
            if let open = quote {
                outside.append(false)
                if escaped { escaped = false } else if open == "\"" && character == "\\" { escaped = true } else if character == open { quote = nil }
            } else if (character == "\"" || character == "'") && " [,".contains(previous) {
                outside.append(false)
                quote = character
            } else {
                outside.append(true)
            }
        }
        if quote != nil {
            throw YAMLSubsetError(line: line, message: "unbalanced quote: a quoted scalar must be closed on its line")
        }
        return outside
    }

    /// `text` up to a `#` that starts a comment (at the start, or after a space, outside quotes).
    private static func withoutComment(_ text: String, line: Int) throws -> String {
        let characters = Array(text)
        let outside = try outsideQuotes(characters, line: line)
        for (offset, character) in characters.enumerated() where character == "#" && outside[offset] {
            if offset == 0 || characters[offset - 1] == " " { return String(characters[..<offset]) }
        }
        return text
    }

    /// Splits `key: rest` at the first `: ` (or a final `:`) outside quotes and brackets; nil when
    /// the line is not a mapping entry.
    private static func keyAndRest(_ text: String, line: Int) throws -> (String, String)? {
        let characters = Array(text)
        let outside = try outsideQuotes(characters, line: line)
        var depth = 0
        for (offset, character) in characters.enumerated() where outside[offset] {
            if character == "[" || character == "{" { depth += 1 }
            if character == "]" || character == "}" { depth -= 1 }
            guard character == ":", depth == 0, offset + 1 == characters.count || characters[offset + 1] == " " else { continue }
            let rawKey = String(characters[..<offset]).trimmingCharacters(in: .whitespaces)
            let rest = String(characters[(offset + 1)...]).trimmingCharacters(in: .whitespaces)
            guard !rawKey.isEmpty else { throw YAMLSubsetError(line: line, message: "empty key") }
            guard case .scalar(let key) = try inline(rawKey, line: line) else {
                throw YAMLSubsetError(line: line, message: "a key must be a scalar, got \(rawKey)")
            }
            return (key, rest)
        }
        return nil
    }

    // MARK: - Scalars and flow lists

    /// A value written on one line: a quoted or plain scalar, a flow list of scalars, `{}`.
    private static func inline(_ text: String, line: Int) throws -> YAMLValue {
        guard let first = text.first else { return .null }
        switch first {
        case "&", "*": throw YAMLSubsetError(line: line, message: "anchors and aliases are outside the subset: \(text)")
        case "!": throw YAMLSubsetError(line: line, message: "tags are outside the subset: \(text)")
        case "|", ">": throw YAMLSubsetError(line: line, message: "block scalars (| and >) are outside the subset; use a quoted string")
        case "{":
            guard text.replacingOccurrences(of: " ", with: "") == "{}" else {
                throw YAMLSubsetError(line: line, message: "flow mappings are outside the subset; write a block mapping")
            }
            return .map([])
        case "[":
            guard text.last == "]" else { throw YAMLSubsetError(line: line, message: "flow list without its closing ]") }
            let inner = String(text.dropFirst().dropLast())
            if inner.trimmingCharacters(in: .whitespaces).isEmpty { return .list([]) }
            return .list(try splitFlowItems(inner, line: line).map { item in
                if item.first == "[" || item.first == "{" {
                    throw YAMLSubsetError(line: line, message: "nested flow collections are outside the subset")
                }
                guard !item.isEmpty else { throw YAMLSubsetError(line: line, message: "empty item in a flow list") }
                return try inline(item, line: line)
            })
        case "\"": return .scalar(try doubleQuoted(text, line: line))
        case "'":
            guard text.count >= 2, text.last == "'" else { throw YAMLSubsetError(line: line, message: "unterminated 'string'") }
            let body = String(text.dropFirst().dropLast())
            if body.replacingOccurrences(of: "''", with: "").contains("'") {
                throw YAMLSubsetError(line: line, message: "text after a closing quote: \(text)")
            }
            return .scalar(body.replacingOccurrences(of: "''", with: "'"))
        default:
            if text == "~" || text == "null" { return .null }
            return .scalar(text)
        }
    }

    private static func doubleQuoted(_ text: String, line: Int) throws -> String {
        var result = ""
        var characters = text.dropFirst().makeIterator()
        while let character = characters.next() {
            switch character {
            case "\"":
                guard characters.next() == nil else { throw YAMLSubsetError(line: line, message: "text after a closing quote: \(text)") }
                return result
            case "\\":
                switch characters.next() {
                case "\""?: result.append("\"")
                case "\\"?: result.append("\\")
                case "/"?: result.append("/")
                case "n"?: result.append("\n")
                case "t"?: result.append("\t")
                case let other: throw YAMLSubsetError(line: line, message: "escape \\\(other.map(String.init) ?? "") is outside the subset")
                }
            default: result.append(character)
            }
        }
        throw YAMLSubsetError(line: line, message: "unterminated \"string\"")
    }

    /// The items of a flow list's inside, split at commas outside quotes, trimmed.
    private static func splitFlowItems(_ inner: String, line: Int) throws -> [String] {
        var items: [String] = []
        var current = ""
        var quote: Character?
        var escaped = false
        for character in inner {
            if let open = quote {
                current.append(character)
                if escaped { escaped = false } else if open == "\"" && character == "\\" { escaped = true } else if character == open { quote = nil }
            } else if character == "," {
                items.append(current.trimmingCharacters(in: .whitespaces))
                current = ""
            } else {
                if (character == "\"" || character == "'") && current.trimmingCharacters(in: .whitespaces).isEmpty { quote = character }
                current.append(character)
            }
        }
        if quote != nil { throw YAMLSubsetError(line: line, message: "unterminated string in a flow list") }
        items.append(current.trimmingCharacters(in: .whitespaces))
        return items
    }
}
