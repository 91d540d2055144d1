import DepotHTTP
import Foundation

/// Turns ingress requests into messages. One message: the body is the payload, its
/// Content-Type kept, and these request headers set the rest:
///
/// - `Idempotency-Key`: a retry with the same key stores nothing and returns the first id;
/// - `Depot-Priority`: an integer, higher first (default 0);
/// - `Depot-Delay-Ms`: not claimable for this many milliseconds (default 0);
/// - `Depot-Group-Key`: delivered one at a time, in order, with others of the key;
/// - `Depot-Header-NAME: VALUE`: the message header NAME (repeatable).
///
/// A batch is a JSON array (`Content-Type: application/json`) or NDJSON, one object per line
/// (`application/x-ndjson`), of objects with `payload` (a string is stored as UTF-8 text, any
/// other JSON value as JSON) or `payload_base64`, and optionally `content_type`, `headers`,
/// `priority`, `delay_ms`, `group_key`, `idempotency_key`.
enum IngressMessages {
    /// Most messages one batch request may hold.
    static let batchLimit = 10_000
    static let headerPrefix = "depot-header-"
    static let batchFields: Set<String> = ["payload", "payload_base64", "content_type", "headers", "priority", "delay_ms",
                                           "group_key", "idempotency_key"]

    /// The message of a single-message request.
    static func message(from request: HTTPRequest) throws -> OutgoingMessage {
        var message = OutgoingMessage(payload: request.body, contentType: request.headers["Content-Type"])
        message.idempotencyKey = try key(request.headers["Idempotency-Key"], name: "Idempotency-Key")
        message.groupKey = try key(request.headers["Depot-Group-Key"], name: "Depot-Group-Key")
        if let text = request.headers["Depot-Priority"] {
            guard let priority = Int32(text.trimmingCharacters(in: .whitespaces)) else {
                throw HTTPError(400, "Depot-Priority \"\(text)\" is not an integer between \(Int32.min) and \(Int32.max)")
            }
            message.priority = Int(priority)
        }
        if let text = request.headers["Depot-Delay-Ms"] {
            guard let delay = Int(text.trimmingCharacters(in: .whitespaces)), delay >= 0 else {
                throw HTTPError(400, "Depot-Delay-Ms \"\(text)\" is not a whole number of milliseconds, 0 or more")
            }
            message.delay = .milliseconds(delay)
        }
        for (name, value) in request.headers where hasHeaderPrefix(name) {
            let header = String(name.dropFirst(headerPrefix.count))
            guard !header.isEmpty else { throw HTTPError(400, "\(name) names no message header; use Depot-Header-NAME: VALUE") }
            message.headers[header] = value
        }
        return message
    }

    /// Whether `name` starts with `Depot-Header-` in any case; by bytes, as it runs for every
    /// header of every request.
    static func hasHeaderPrefix(_ name: String) -> Bool {
        var bytes = name.utf8.makeIterator()
        for expected in headerPrefix.utf8 {
            guard let byte = bytes.next(), byte | (byte >= 65 && byte <= 90 ? 0x20 : 0) == expected else { return false }
        }
        return true
    }

    /// The messages of a batch request, in order.
    static func batch(from request: HTTPRequest) throws -> [OutgoingMessage] {
        let type = request.headers["Content-Type"]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        let items: [Any]
        switch type {
        case "application/json"?:
            items = try jsonArray(request.body)
        case "application/x-ndjson"?, "application/ndjson"?, "application/jsonl"?:
            items = try ndjson(request.body)
        case nil:
            items = request.body.first(where: { !Character(UnicodeScalar($0)).isWhitespace }) == UInt8(ascii: "[")
                ? try jsonArray(request.body) : try ndjson(request.body)
        case let other?:
            throw HTTPError(415, "a batch is application/json (an array) or application/x-ndjson (an object per line), not \(other)")
        }
        guard !items.isEmpty else { throw HTTPError(400, "the batch holds no messages") }
        guard items.count <= batchLimit else {
            throw HTTPError(413, "the batch holds \(items.count) messages; send at most \(batchLimit) per request")
        }
        return try items.enumerated().map { index, item in
            do {
                return try message(fromItem: item)
            } catch let error as HTTPError {
                throw HTTPError(error.status, "message \(index): \(error.message)")
            }
        }
    }

    private static func jsonArray(_ body: Data) throws -> [Any] {
        let value: Any
        do { value = try JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) } catch {
            throw HTTPError(400, "the body is not valid JSON: \(error.localizedDescription)")
        }
        guard let array = value as? [Any] else { throw HTTPError(400, "a JSON batch is an array of message objects") }
        return array
    }

    private static func ndjson(_ body: Data) throws -> [Any] {
        var items: [Any] = []
        for (number, line) in body.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.last == UInt8(ascii: "\r") ? line.dropLast() : line
            guard trimmed.contains(where: { !Character(UnicodeScalar($0)).isWhitespace }) else { continue }
            do {
                items.append(try JSONSerialization.jsonObject(with: Data(trimmed), options: [.fragmentsAllowed]))
            } catch {
                throw HTTPError(400, "NDJSON line \(number + 1) is not valid JSON")
            }
        }
        return items
    }

    private static func message(fromItem item: Any) throws -> OutgoingMessage {
        guard let object = item as? [String: Any] else { throw HTTPError(400, "is not a JSON object") }
        if let unknown = object.keys.sorted().first(where: { !batchFields.contains($0) }) {
            throw HTTPError(400, "unknown field \"\(unknown)\"; fields are \(batchFields.sorted().joined(separator: ", "))")
        }
        var message = OutgoingMessage(payload: Data())
        switch (object["payload"], object["payload_base64"]) {
        case (nil, nil):
            throw HTTPError(400, "has neither payload nor payload_base64")
        case (_?, _?):
            throw HTTPError(400, "has both payload and payload_base64; send one")
        case (let text as String, nil):
            message.payload = Data(text.utf8)
            message.contentType = "text/plain; charset=utf-8"
        case (let json?, nil):
            message.payload = try JSONSerialization.data(withJSONObject: json, options: [.fragmentsAllowed])
            message.contentType = "application/json"
        case (nil, let encoded?):
            guard let text = encoded as? String, let bytes = Data(base64Encoded: text) else {
                throw HTTPError(400, "payload_base64 is not a base64 string")
            }
            message.payload = bytes
            message.contentType = "application/octet-stream"
        }
        if let type = object["content_type"] {
            guard let type = type as? String else { throw HTTPError(400, "content_type is not a string") }
            message.contentType = type
        }
        if let headers = object["headers"] {
            guard let headers = headers as? [String: Any] else { throw HTTPError(400, "headers is not an object of strings") }
            for (name, value) in headers {
                guard let value = value as? String else { throw HTTPError(400, "header \"\(name)\" is not a string") }
                message.headers[name] = value
            }
        }
        if let priority = object["priority"] {
            guard let value = integer(priority), let priority = Int32(exactly: value) else {
                throw HTTPError(400, "priority is not an integer between \(Int32.min) and \(Int32.max)")
            }
            message.priority = Int(priority)
        }
        if let delay = object["delay_ms"] {
            guard let value = integer(delay), value >= 0 else { throw HTTPError(400, "delay_ms is not a whole number, 0 or more") }
            message.delay = .milliseconds(value)
        }
        message.groupKey = try key(object["group_key"].map { $0 as? String ?? "\u{0}" }, name: "group_key")
        message.idempotencyKey = try key(object["idempotency_key"].map { $0 as? String ?? "\u{0}" }, name: "idempotency_key")
        return message
    }

    private static func integer(_ value: Any) -> Int? {
        guard let number = value as? NSNumber else { return nil }
        let double = number.doubleValue
        guard double == double.rounded(), abs(double) < 9e15 else { return nil }
        return number.intValue
    }

    /// A key (idempotency or group): 1 to 200 characters, no control characters.
    private static func key(_ value: String?, name: String) throws -> String? {
        guard let value else { return nil }
        guard !value.isEmpty, value.count <= 200, !value.unicodeScalars.contains(where: { $0.value < 32 || $0.value == 127 }) else {
            throw HTTPError(400, "\(name) must be a string of 1 to 200 characters without control characters")
        }
        return value
    }
}
