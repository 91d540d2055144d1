import Foundation

/// One entry of a store's journal: messages that arrived (one `store` call, so a batch is all or
/// none even when a crash tears the file), or ids that left (ack, dead letter, move, purge).
///
/// Body layout, little-endian: a kind byte, then
/// - put (1): message count u32, then per message: id (16 bytes), createdAt and availableAt
///   (Float64 bit patterns of seconds since 2001, so dates come back exactly), priority i64,
///   content type, group key and idempotency key (each: 0, or 1 and a string), header count u32
///   and that many name/value strings, payload length u32 and its bytes;
/// - remove (2): id count u32, then the ids.
///
/// Strings are a u32 byte count and UTF-8. Lease state (holder, attempts, last error, release
/// times) is not recorded: after a reopen every message is ready again.
enum JournalRecord: Equatable, Sendable {
    case put([Message])
    case remove([UUID])

    static let putKind: UInt8 = 1
    static let removeKind: UInt8 = 2

    /// The record's body, ready to be framed.
    func encoded() throws -> Data {
        var writer = ByteWriter()
        switch self {
        case .put(let messages):
            writer.byte(Self.putKind)
            try writer.count(messages.count)
            for message in messages {
                writer.uuid(message.id)
                writer.u64(message.createdAt.timeIntervalSinceReferenceDate.bitPattern)
                writer.u64(message.availableAt.timeIntervalSinceReferenceDate.bitPattern)
                writer.u64(UInt64(bitPattern: Int64(message.priority)))
                try writer.optionalString(message.contentType)
                try writer.optionalString(message.groupKey)
                try writer.optionalString(message.idempotencyKey)
                try writer.count(message.headers.count)
                for (header, value) in message.headers.sorted(by: { $0.key < $1.key }) {
                    try writer.string(header)
                    try writer.string(value)
                }
                try writer.bytes(message.payload)
            }
        case .remove(let ids):
            writer.byte(Self.removeKind)
            try writer.count(ids.count)
            ids.forEach { writer.uuid($0) }
        }
        return writer.data
    }

    /// Reads a body `encoded()` wrote; messages get `store` as their store's name.
    init(decoding body: Data, store: String) throws {
        var reader = ByteReader(body)
        switch try reader.byte() {
        case Self.putKind:
            let count = try reader.count()
            var messages: [Message] = []
            for _ in 0..<count {
                let id = try reader.uuid()
                let createdAt = Date(timeIntervalSinceReferenceDate: Double(bitPattern: try reader.u64()))
                let availableAt = Date(timeIntervalSinceReferenceDate: Double(bitPattern: try reader.u64()))
                let priority = Int(Int64(bitPattern: try reader.u64()))
                let contentType = try reader.optionalString()
                let groupKey = try reader.optionalString()
                let idempotencyKey = try reader.optionalString()
                var headers: [String: String] = [:]
                for _ in 0..<(try reader.count()) {
                    let header = try reader.string()
                    headers[header] = try reader.string()
                }
                let payload = try reader.bytes()
                messages.append(Message(
                    id: id, store: store, payload: payload, headers: headers, contentType: contentType,
                    priority: priority, createdAt: createdAt, availableAt: availableAt,
                    groupKey: groupKey, idempotencyKey: idempotencyKey))
            }
            self = .put(messages)
        case Self.removeKind:
            let count = try reader.count()
            self = .remove(try (0..<count).map { _ in try reader.uuid() })
        case let kind:
            throw Malformed(reason: "unknown record kind \(kind) (written by a newer depot?)")
        }
        guard reader.isAtEnd else { throw Malformed(reason: "\(reader.remaining) bytes left over after the record") }
    }

    /// A body that passed its checksum but cannot be read.
    struct Malformed: Error, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }
}

/// Appends little-endian fields to a record body.
private struct ByteWriter {
    var data = Data()

    mutating func byte(_ value: UInt8) { data.append(value) }

    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }

    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }

    mutating func uuid(_ value: UUID) { withUnsafeBytes(of: value.uuid) { data.append(contentsOf: $0) } }

    mutating func count(_ value: Int) throws {
        guard let value = UInt32(exactly: value) else {
            throw StoreError(.invalidArgument, "\(value) is too large for a journal record (the limit is \(UInt32.max))",
                             hint: "store smaller payloads, or fewer messages per call")
        }
        u32(value)
    }

    mutating func bytes(_ value: Data) throws {
        try count(value.count)
        data.append(value)
    }

    mutating func string(_ value: String) throws { try bytes(Data(value.utf8)) }

    mutating func optionalString(_ value: String?) throws {
        guard let value else { return byte(0) }
        byte(1)
        try string(value)
    }
}

/// Reads the fields `ByteWriter` wrote, failing with `Malformed` instead of reading past the end.
private struct ByteReader {
    let data: Data
    var position: Data.Index

    init(_ data: Data) {
        self.data = data
        position = data.startIndex
    }

    var remaining: Int { data.endIndex - position }
    var isAtEnd: Bool { position == data.endIndex }

    mutating func take(_ count: Int) throws -> Data {
        guard count <= remaining else {
            throw JournalRecord.Malformed(reason: "a field of \(count) bytes runs past the record's end")
        }
        defer { position += count }
        return data[position..<(position + count)]
    }

    mutating func byte() throws -> UInt8 { try take(1).first! }

    mutating func u32() throws -> UInt32 {
        try take(4).reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func u64() throws -> UInt64 {
        try take(8).reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    mutating func uuid() throws -> UUID {
        let bytes = Array(try take(16))
        return UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                           bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    }

    mutating func count() throws -> Int { Int(try u32()) }

    mutating func bytes() throws -> Data { Data(try take(try count())) }

    mutating func string() throws -> String {
        let bytes = try bytes()
        guard let text = String(data: bytes, encoding: .utf8) else {
            throw JournalRecord.Malformed(reason: "a string is not UTF-8")
        }
        return text
    }

    mutating func optionalString() throws -> String? {
        switch try byte() {
        case 0: return nil
        case 1: return try string()
        case let flag: throw JournalRecord.Malformed(reason: "optional-string flag \(flag) is neither 0 nor 1")
        }
    }
}
