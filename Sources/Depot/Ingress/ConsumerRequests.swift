import DepotHTTP
import Foundation

/// Reads the JSON bodies of the consumer routes (`/claims`, `/acks`, `/releases`, `/leases`)
/// into values, checking every field before anything touches the database: a missing, mistyped,
/// out-of-range or unknown field is a 400 that names the field, what it got and what is allowed.
/// Durations are whole milliseconds (`lease_ms`, `wait_ms`, `retry_in_ms`), with the SQL API's
/// bounds (a lease longer than 0 and at most a day).
enum ConsumerRequests {
    /// Most bytes a consumer body may hold (413 beyond): a thousand ids take about 40 KiB, so
    /// this leaves room for an error text while bounding what one parse costs.
    static let maximumBodyBytes = 256 * 1024
    /// Most messages one claim may ask for, and most ids one ack, release or lease may name.
    static let maximumLimit = 1000
    /// The longest lease, as `depot.claim` allows: one day.
    static let maximumLeaseMilliseconds = 86_400_000
    /// The lease when none is given, as `depot.claim`'s default: 30 s.
    static let defaultLeaseMilliseconds = 30_000
    /// The longest long-poll: 30 s, under the HTTP server's 60 s idle timeout and most proxies'.
    static let maximumWaitMilliseconds = 30_000
    /// The longest retry delay of a release: one day.
    static let maximumRetryMilliseconds = 86_400_000
    /// The longest error text a release may record.
    static let maximumErrorCharacters = 10_000

    struct Claim: Equatable {
        var consumer: String
        var limit: Int
        var lease: Duration
        var wait: Duration
    }

    struct Ack: Equatable {
        var consumer: String
        var ids: [UUID]
    }

    struct Release: Equatable {
        var consumer: String
        var ids: [UUID]
        var retryIn: Duration
        var error: String?
    }

    struct Extend: Equatable {
        var consumer: String
        var ids: [UUID]
        var lease: Duration
    }

    /// `{"consumer", "limit" (1…1000, default 1), "lease_ms" (default 30000), "wait_ms" (0…30000, default 0)}`
    static func claim(from body: Data) throws -> Claim {
        let object = try fields(of: body, allowed: ["consumer", "limit", "lease_ms", "wait_ms"], example: #"{"consumer":"worker-1","limit":10,"lease_ms":30000,"wait_ms":20000}"#)
        return Claim(consumer: try consumer(object),
                     limit: try integer(object, "limit", in: 1...maximumLimit, default: 1),
                     lease: try lease(object),
                     wait: .milliseconds(try integer(object, "wait_ms", in: 0...maximumWaitMilliseconds, default: 0)))
    }

    /// `{"consumer", "ids": [1…1000 ids]}`
    static func ack(from body: Data) throws -> Ack {
        let object = try fields(of: body, allowed: ["consumer", "ids"], example: #"{"consumer":"worker-1","ids":["0b6e…"]}"#)
        return Ack(consumer: try consumer(object), ids: try ids(object, "ids"))
    }

    /// `{"consumer", "id" or "ids", "retry_in_ms" (0…86400000, default 0), "error" (optional text)}`
    static func release(from body: Data) throws -> Release {
        let object = try fields(of: body, allowed: ["consumer", "id", "ids", "retry_in_ms", "error"],
                                example: #"{"consumer":"worker-1","id":"0b6e…","retry_in_ms":10000,"error":"back end busy"}"#)
        let ids: [UUID]
        switch (object["id"], object["ids"]) {
        case (nil, nil): throw HTTPError(400, "id or ids is required: the message (\"id\": \"…\") or messages (\"ids\": [\"…\"]) to release")
        case (_?, _?): throw HTTPError(400, "id and ids were both sent; send one of them")
        case (let id?, nil): ids = [try uuid(id, field: "id")]
        case (nil, _?): ids = try self.ids(object, "ids")
        }
        var error: String?
        if let value = object["error"], !(value is NSNull) {
            guard let text = value as? String, text.count <= maximumErrorCharacters else {
                throw HTTPError(400, "error must be a string of at most \(maximumErrorCharacters) characters (or null), got \(shown(value))")
            }
            error = text
        }
        return Release(consumer: try consumer(object), ids: ids,
                       retryIn: .milliseconds(try integer(object, "retry_in_ms", in: 0...maximumRetryMilliseconds, default: 0)),
                       error: error)
    }

    /// `{"consumer", "ids": [1…1000 ids], "lease_ms" (default 30000)}`
    static func extend(from body: Data) throws -> Extend {
        let object = try fields(of: body, allowed: ["consumer", "ids", "lease_ms"], example: #"{"consumer":"worker-1","ids":["0b6e…"],"lease_ms":60000}"#)
        return Extend(consumer: try consumer(object), ids: try ids(object, "ids"), lease: try lease(object))
    }

    // MARK: - Fields

    /// The body as a JSON object whose keys are all in `allowed`.
    private static func fields(of body: Data, allowed: Set<String>, example: String) throws -> [String: Any] {
        guard body.count <= maximumBodyBytes else {
            throw HTTPError(413, "the body is \(body.count) bytes; a consumer request holds at most \(maximumBodyBytes) (at most \(maximumLimit) ids)")
        }
        guard !body.isEmpty else { throw HTTPError(400, "the body is empty; send a JSON object such as \(example)") }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed])
        } catch {
            throw HTTPError(400, "the body is not valid JSON; send a JSON object such as \(example)")
        }
        guard let object = parsed as? [String: Any] else {
            throw HTTPError(400, "the body is not a JSON object; send one such as \(example)")
        }
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw HTTPError(400, "unknown field \"\(NameCharacters.shown(String(unknown.prefix(100))))\"; fields are \(allowed.sorted().joined(separator: ", "))")
        }
        return object
    }

    /// The consumer name, as `depot.require_consumer` allows it: 1 to 200 characters, none of them control characters.
    private static func consumer(_ object: [String: Any]) throws -> String {
        guard let value = object["consumer"] else {
            throw HTTPError(400, "consumer is required: the name that holds the leases, 1 to 200 characters (e.g. \"billing-worker-1\")")
        }
        guard let name = value as? String, (1...200).contains(name.count),
              !name.unicodeScalars.contains(where: { $0.value < 32 || $0.value == 127 }) else {
            throw HTTPError(400, "consumer must be a string of 1 to 200 characters without control characters, got \(shown(value))")
        }
        return name
    }

    private static func lease(_ object: [String: Any]) throws -> Duration {
        .milliseconds(try integer(object, "lease_ms", in: 1...maximumLeaseMilliseconds, default: defaultLeaseMilliseconds))
    }

    /// A whole number in `range`, or `fallback` when the field is absent.
    private static func integer(_ object: [String: Any], _ field: String, in range: ClosedRange<Int>, default fallback: Int) throws -> Int {
        guard let value = object[field] else { return fallback }
        guard let number = value as? NSNumber, !isBoolean(number),
              number.doubleValue == number.doubleValue.rounded(), abs(number.doubleValue) < 9e15,
              range.contains(number.intValue) else {
            throw HTTPError(400, "\(field) must be a whole number from \(range.lowerBound) to \(range.upperBound), got \(shown(value))")
        }
        return number.intValue
    }

    /// 1 to 1000 message ids.
    private static func ids(_ object: [String: Any], _ field: String) throws -> [UUID] {
        guard let value = object[field] else { throw HTTPError(400, "\(field) is required: an array of 1 to \(maximumLimit) message ids") }
        guard let array = value as? [Any], (1...maximumLimit).contains(array.count) else {
            throw HTTPError(400, "\(field) must be an array of 1 to \(maximumLimit) message ids, got \(shown(value))")
        }
        return try array.enumerated().map { try uuid($0.element, field: "\(field)[\($0.offset)]") }
    }

    private static func uuid(_ value: Any, field: String) throws -> UUID {
        guard let text = value as? String, let id = UUID(uuidString: text) else {
            throw HTTPError(400, "\(field) must be a message id (a UUID such as \"0b6e1d7a-…\"), got \(shown(value))")
        }
        return id
    }

    /// Whether JSONSerialization read `true` or `false` (an NSNumber too, and `is Bool` holds for 0 and 1 as well).
    private static func isBoolean(_ number: NSNumber) -> Bool {
        String(cString: number.objCType) == "c"
    }

    /// A value as the error shows it: short, on one line, its type said.
    private static func shown(_ value: Any) -> String {
        switch value {
        case is NSNull: return "null"
        case let text as String: return "\"\(NameCharacters.shown(String(text.prefix(60))))\"" + (text.count > 60 ? "…" : "")
        case let number as NSNumber where isBoolean(number): return number.boolValue ? "true" : "false"
        case let number as NSNumber: return "\(number)"
        case let array as [Any]: return "an array of \(array.count)"
        case is [String: Any]: return "an object"
        default: return "\(type(of: value))"
        }
    }
}
