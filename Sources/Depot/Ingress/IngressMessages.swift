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
        try checkSingleValues(request.headers)
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

    /// Headers that carry one value: sent twice (`Depot-Priority: 1` then `Depot-Priority: x`),
    /// they are refused rather than read as the first, as a proxy might read the last.
    static let singleValueHeaders = ["Content-Type", "Idempotency-Key", "Depot-Priority", "Depot-Delay-Ms", "Depot-Group-Key", "Authorization"]

    /// 400 naming the first single-value header sent more than once.
    static func checkSingleValues(_ headers: HTTPHeaders) throws {
        // One pass over the fields: this runs for every request.
        var seen = 0
        for field in headers {
            for (index, name) in singleValueHeaders.enumerated() where HTTPHeaders.sameName(field.name, name) {
                if seen & (1 << index) != 0 { throw HTTPError(400, "\(name) was sent more than once; send it once") }
                seen |= 1 << index
            }
        }
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

    /// The messages of a batch request, in order. Items are found by their bytes first (see
    /// `BatchItems`) and parsed one at a time, so a request's limits hold before it costs memory.
    static func batch(from request: HTTPRequest) throws -> [OutgoingMessage] {
        try checkSingleValues(request.headers)
        let type = request.headers["Content-Type"]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        let body = request.body
        let scanner = BatchItems(maximumItems: batchLimit, maximumValuesPerItem: valuesPerItemLimit)
        let items: [(label: String, range: Range<Int>)]
        switch type {
        case "application/json"?:
            items = try scanner.jsonArray(body).enumerated().map { ("message \($0.offset)", $0.element) }
        case "application/x-ndjson"?, "application/ndjson"?, "application/jsonl"?:
            items = try ndjsonItems(body, scanner)
        case nil:
            items = body.first(where: { !Character(UnicodeScalar($0)).isWhitespace }) == UInt8(ascii: "[")
                ? try scanner.jsonArray(body).enumerated().map { ("message \($0.offset)", $0.element) } : try ndjsonItems(body, scanner)
        case let other?:
            throw HTTPError(415, "a batch is application/json (an array) or application/x-ndjson (an object per line), not \(other)")
        }
        guard !items.isEmpty else { throw HTTPError(400, "the batch holds no messages") }
        return try items.map { label, range in
            let item: Any
            do {
                item = try JSONSerialization.jsonObject(with: body.subdata(in: (body.startIndex + range.lowerBound)..<(body.startIndex + range.upperBound)), options: [.fragmentsAllowed])
            } catch {
                throw HTTPError(400, "\(label) is not valid JSON")
            }
            do {
                return try message(fromItem: item)
            } catch let error as HTTPError {
                throw HTTPError(error.status, "\(label): \(error.message)")
            }
        }
    }

    /// Most JSON values one batch item may hold. 100,000 parsed values cost a few MB.
    static let valuesPerItemLimit = 100_000

    private static func ndjsonItems(_ body: Data, _ scanner: BatchItems) throws -> [(label: String, range: Range<Int>)] {
        try scanner.ndjsonLines(body).enumerated().map { ("message \($0.offset) (NDJSON line \($0.element.line))", $0.element.range) }
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
