import Foundation

/// A Swift value that can be sent to PostgreSQL as a query parameter, in binary format.
public protocol PostgresEncodable: Sendable {
    /// The PostgreSQL type this value is sent as.
    static var postgresType: PostgresType { get }
    /// Appends the binary wire form of the value.
    func encode(into buffer: inout [UInt8])
    /// True when the value is SQL NULL (only an empty Optional).
    var isNullValue: Bool { get }
}

extension PostgresEncodable {
    public var isNullValue: Bool { false }
}

/// A Swift value that can be read from a PostgreSQL result column in binary format.
public protocol PostgresDecodable: Sendable {
    /// Reads the value from its binary wire form; `type` is the column's type.
    /// Throws `DecodingProblem` when the type or bytes do not fit.
    static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresType) throws -> Self
    /// The value for SQL NULL; non-optional types throw.
    static func decodeNull() throws -> Self
}

extension PostgresDecodable {
    public static func decodeNull() throws -> Self { throw DecodingProblem("the value is NULL; decode as an Optional") }
}

/// A type usable as the element of a one-dimensional PostgreSQL array.
public protocol PostgresArrayElement: PostgresEncodable, PostgresDecodable {
    static var arrayType: PostgresType { get }
}

public typealias PostgresCodable = PostgresEncodable & PostgresDecodable

/// Why a value could not be decoded; `Row` wraps it with the column name, index and Swift type.
public struct DecodingProblem: Error, Sendable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
}

// MARK: - Binary helpers

extension UnsafeRawBufferPointer {
    func readInteger<T: FixedWidthInteger>(at offset: Int, as: T.Type = T.self) throws -> T {
        guard offset >= 0, offset + MemoryLayout<T>.size <= count else {
            throw DecodingProblem("\(count) bytes is too short for a \(MemoryLayout<T>.size)-byte integer at offset \(offset)")
        }
        var value: T = 0
        withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: self[offset..<offset + MemoryLayout<T>.size])) }
        return T(bigEndian: value)
    }
}

extension Array where Element == UInt8 {
    mutating func appendInteger<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    /// A value as array elements and COPY fields are sent: its 32-bit length, then its bytes;
    /// NULL is length -1. Straight into the buffer, the length written in afterwards, so a
    /// batch's payloads are copied once, not through a scratch array.
    mutating func appendLengthPrefixed<T: PostgresEncodable>(_ value: T) {
        if value.isNullValue { return appendInteger(Int32(-1)) }
        let lengthAt = count
        appendInteger(Int32(0))
        value.encode(into: &self)
        Swift.withUnsafeBytes(of: Int32(count - lengthAt - 4).bigEndian) { length in
            withUnsafeMutableBytes { $0.baseAddress!.advanced(by: lengthAt).copyMemory(from: length.baseAddress!, byteCount: 4) }
        }
    }
}

private func expect(_ type: PostgresType, in allowed: PostgresType..., swift: String) throws {
    guard allowed.contains(type) else {
        throw DecodingProblem("column type \(type) cannot be read as \(swift); expected \(allowed.map(\.description).joined(separator: " or "))")
    }
}

// MARK: - Scalars

extension Bool: PostgresArrayElement {
    public static var postgresType: PostgresType { .bool }
    public static var arrayType: PostgresType { .boolArray }
    public func encode(into buffer: inout [UInt8]) { buffer.append(self ? 1 : 0) }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresType) throws -> Bool {
        try expect(type, in: .bool, swift: "Bool")
        guard bytes.count == 1 else { throw DecodingProblem("bool must be 1 byte, got \(bytes.count)") }
        return bytes[0] != 0
    }
}

extension Int: PostgresArrayElement {
    public static var postgresType: PostgresType { .int8 }
    public static var arrayType: PostgresType { .int8Array }
    public func encode(into buffer: inout [UInt8]) { buffer.appendInteger(Int64(self)) }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresType) throws -> Int {
        switch type {
        case .int2: Int(try bytes.readInteger(at: 0, as: Int16.self))
        case .int4: Int(try bytes.readInteger(at: 0, as: Int32.self))
        case .int8: Int(try bytes.readInteger(at: 0, as: Int64.self))
        case .oidType: Int(try bytes.readInteger(at: 0, as: UInt32.self))
        default: throw DecodingProblem("column type \(type) cannot be read as Int; expected int2, int4, int8 or oid")
        }
    }
}

extension Int32: PostgresArrayElement {
    public static var postgresType: PostgresType { .int4 }
    public static var arrayType: PostgresType { .int4Array }
    public func encode(into buffer: inout [UInt8]) { buffer.appendInteger(self) }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresType) throws -> Int32 {
        switch type {
        case .int2: Int32(try bytes.readInteger(at: 0, as: Int16.self))
        case .int4: try bytes.readInteger(at: 0, as: Int32.self)
        default: throw DecodingProblem("column type \(type) cannot be read as Int32; expected int2 or int4")
        }
    }
}

extension Double: PostgresEncodable, PostgresDecodable {
    public static var postgresType: PostgresType { .float8 }
    public func encode(into buffer: inout [UInt8]) { buffer.appendInteger(bitPattern) }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresType) throws -> Double {
        switch type {
        case .float8: Double(bitPattern: try bytes.readInteger(at: 0, as: UInt64.self))
        case .float4: Double(Float(bitPattern: try bytes.readInteger(at: 0, as: UInt32.self)))
        case .int2, .int4, .int8: Double(try Int.decode(from: bytes, type: type))
        default: throw DecodingProblem("column type \(type) cannot be read as Double; expected float4, float8 or an integer type")
        }
    }
}

extension String: PostgresArrayElement {
    public static var postgresType: PostgresType { .text }
    public static var arrayType: PostgresType { .textArray }
    public func encode(into buffer: inout [UInt8]) { buffer.append(contentsOf: utf8) }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresType) throws -> String {
        if type == .jsonb {
            guard bytes.first == 1 else { throw DecodingProblem("unknown jsonb format version \(bytes.first.map(String.init) ?? "none")") }
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes.dropFirst()), as: UTF8.self)
        }
        guard type.isTextual else {
            throw DecodingProblem("column type \(type) cannot be read as String; expected text, varchar, name, json or jsonb (cast it with ::text)")
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Data: PostgresArrayElement {
    public static var postgresType: PostgresType { .bytea }
    public static var arrayType: PostgresType { .byteaArray }
    public func encode(into buffer: inout [UInt8]) { buffer.append(contentsOf: self) }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresType) throws -> Data {
        try expect(type, in: .bytea, swift: "Data")
        return Data(bytes)
    }
}

extension UUID: PostgresArrayElement {
    public static var postgresType: PostgresType { .uuid }
    public static var arrayType: PostgresType { .uuidArray }
    public func encode(into buffer: inout [UInt8]) { withUnsafeBytes(of: uuid) { buffer.append(contentsOf: $0) } }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresType) throws -> UUID {
        if type.isTextual {
            guard let id = UUID(uuidString: String(decoding: bytes, as: UTF8.self)) else { throw DecodingProblem("text is not a UUID") }
            return id
        }
        try expect(type, in: .uuid, swift: "UUID")
        guard bytes.count == 16 else { throw DecodingProblem("uuid must be 16 bytes, got \(bytes.count)") }
        var raw: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &raw) { $0.copyMemory(from: bytes) }
        return UUID(uuid: raw)
    }
}

/// Microseconds between 1970-01-01 and PostgreSQL's epoch, 2000-01-01 (UTC).
private let postgresEpochOffsetSeconds: Double = 946_684_800

extension Date: PostgresArrayElement {
    public static var postgresType: PostgresType { .timestamptz }
    public static var arrayType: PostgresType { .timestamptzArray }
    public func encode(into buffer: inout [UInt8]) {
        let micros = ((timeIntervalSince1970 - postgresEpochOffsetSeconds) * 1_000_000).rounded()
        buffer.appendInteger(Int64(micros))
    }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresType) throws -> Date {
        try expect(type, in: .timestamptz, .timestamp, swift: "Date")
        let micros = try bytes.readInteger(at: 0, as: Int64.self)
        if micros == .max || micros == .min { throw DecodingProblem("infinite timestamps cannot be read as Date") }
        return Date(timeIntervalSince1970: Double(micros) / 1_000_000 + postgresEpochOffsetSeconds)
    }
}

/// A `jsonb` value given as JSON text; use it for parameters that are documents, not strings.
public struct JSONB: PostgresArrayElement, Hashable {
    public var text: String
    public init(_ text: String) { self.text = text }
    /// Encodes any `Encodable` value with `JSONEncoder`.
    public init<T: Encodable>(encoding value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        text = String(decoding: try encoder.encode(value), as: UTF8.self)
    }
    public func decoded<T: Decodable>(as type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(text.utf8))
    }
    public static var postgresType: PostgresType { .jsonb }
    public static var arrayType: PostgresType { .jsonbArray }
    public func encode(into buffer: inout [UInt8]) {
        buffer.append(1)
        buffer.append(contentsOf: text.utf8)
    }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresType) throws -> JSONB {
        try expect(type, in: .jsonb, .json, swift: "JSONB")
        return JSONB(try String.decode(from: bytes, type: type))
    }
}

private let hexDigits = Array("0123456789abcdef".utf8)

/// A string map stored as a `jsonb` object: message headers (and `jsonb[]` for a batch's).
extension Dictionary: PostgresEncodable, PostgresDecodable, PostgresArrayElement where Key == String, Value == String {
    public static var postgresType: PostgresType { .jsonb }
    public static var arrayType: PostgresType { .jsonbArray }
    /// Written by hand rather than with `JSONEncoder`: every stored message carries its headers,
    /// and the encoder's setup cost more than the insert's share of the database's work.
    public func encode(into buffer: inout [UInt8]) {
        buffer.append(1)  // jsonb version
        guard !isEmpty else { return buffer.append(contentsOf: [UInt8(ascii: "{"), UInt8(ascii: "}")]) }
        buffer.append(UInt8(ascii: "{"))
        // In the dictionary's own order: jsonb stores an object's keys sorted whatever order they came in.
        for (index, (key, value)) in enumerated() {
            if index > 0 { buffer.append(UInt8(ascii: ",")) }
            Self.appendJSONString(key, to: &buffer)
            buffer.append(UInt8(ascii: ":"))
            Self.appendJSONString(value, to: &buffer)
        }
        buffer.append(UInt8(ascii: "}"))
    }

    /// `text` as a JSON string literal: quote, backslash and control characters escaped.
    static func appendJSONString(_ text: String, to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                buffer.append(UInt8(ascii: "\\"))
                buffer.append(byte)
            case 0..<0x20:
                buffer.append(contentsOf: Array("\\u00".utf8))
                buffer.append(hexDigits[Int(byte >> 4)])
                buffer.append(hexDigits[Int(byte & 0x0F)])
            default:
                buffer.append(byte)
            }
        }
        buffer.append(UInt8(ascii: "\""))
    }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresType) throws -> [String: String] {
        if type == .jsonb, bytes.first == 1, let map = StringMapJSON.parse(UnsafeRawBufferPointer(rebasing: bytes.dropFirst())) {
            return map
        }
        if type == .json, let map = StringMapJSON.parse(bytes) { return map }
        let json = try JSONB.decode(from: bytes, type: type)
        do { return try json.decoded(as: [String: String].self) } catch {
            throw DecodingProblem("jsonb is not an object of string values")
        }
    }
}

// MARK: - Optionals and arrays

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public static var postgresType: PostgresType { Wrapped.postgresType }
    public var isNullValue: Bool { self == nil }
    public func encode(into buffer: inout [UInt8]) { self?.encode(into: &buffer) }
}

extension Optional: PostgresArrayElement where Wrapped: PostgresArrayElement {
    public static var arrayType: PostgresType { Wrapped.arrayType }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresType) throws -> Wrapped? {
        try Wrapped.decode(from: bytes, type: type)
    }
    public static func decodeNull() throws -> Wrapped? { nil }
}

extension Array: PostgresEncodable where Element: PostgresArrayElement {
    public static var postgresType: PostgresType { Element.arrayType }
    public func encode(into buffer: inout [UInt8]) {
        buffer.appendInteger(Int32(isEmpty ? 0 : 1))  // dimensions
        buffer.appendInteger(Int32(contains { $0.isNullValue } ? 1 : 0))  // flags: has NULLs
        buffer.appendInteger(Element.postgresType.oid)
        if !isEmpty {
            buffer.appendInteger(Int32(count))
            buffer.appendInteger(Int32(1))  // lower bound
        }
        for element in self { buffer.appendLengthPrefixed(element) }
    }
}

extension Array: PostgresDecodable where Element: PostgresArrayElement {
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresType) throws -> [Element] {
        guard type.isArray else {
            throw DecodingProblem("column type \(type) cannot be read as an array; expected \(Element.arrayType)")
        }
        let dimensions = try bytes.readInteger(at: 0, as: Int32.self)
        let elementType = PostgresType(oid: try bytes.readInteger(at: 8, as: UInt32.self))
        if dimensions == 0 { return [] }
        guard dimensions == 1 else { throw DecodingProblem("only one-dimensional arrays can be read, got \(dimensions) dimensions") }
        let count = Int(try bytes.readInteger(at: 12, as: Int32.self))
        var offset = 20
        var result: [Element] = []
        result.reserveCapacity(count)
        for index in 0..<count {
            let length = Int(try bytes.readInteger(at: offset, as: Int32.self))
            offset += 4
            guard length >= 0 else {
                do { result.append(try Element.decodeNull()) } catch {
                    throw DecodingProblem("array element \(index + 1) is NULL; decode as an array of Optionals")
                }
                continue
            }
            guard offset + length <= bytes.count else { throw DecodingProblem("array element \(index + 1) runs past the value") }
            result.append(try Element.decode(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + length]), type: elementType))
            offset += length
        }
        return result
    }
}
