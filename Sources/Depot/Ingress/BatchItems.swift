import DepotHTTP
import Foundation

/// Finds the items of a batch body by its bytes alone, before any item is parsed, so that the
/// limits hold while parsing rather than after: a 10 MiB `[0,0,…]` (5 million items) is refused
/// having allocated nothing per item, and each item is then parsed on its own, so a request costs
/// about its largest item rather than all of them at once.
struct BatchItems {
    /// Most messages one batch may hold (413 beyond).
    let maximumItems: Int
    /// Most JSON values (strings, numbers, arrays, objects, literals) one item may hold (413
    /// beyond): parsed, each costs tens of bytes, so this bounds the memory one item takes.
    let maximumValuesPerItem: Int

    /// The byte ranges of the elements of the JSON array `body`. Throws 400 when the body is not
    /// an array of values separated by commas, and 413 past a limit. The items themselves are
    /// checked only as far as their brackets and strings; the JSON parser checks the rest.
    func jsonArray(_ body: Data) throws -> [Range<Int>] {
        try body.withUnsafeBytes { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            var index = skipWhitespace(bytes, from: 0)
            guard index < bytes.count, bytes[index] == UInt8(ascii: "[") else {
                throw HTTPError(400, "a JSON batch is an array of message objects")
            }
            index = skipWhitespace(bytes, from: index + 1)
            var items: [Range<Int>] = []
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
            } else {
                while true {
                    guard items.count < maximumItems else { throw tooMany() }
                    let end = try valueEnd(bytes, from: index, item: items.count)
                    items.append(index..<end)
                    index = skipWhitespace(bytes, from: end)
                    guard index < bytes.count else { throw HTTPError(400, "the body is not valid JSON: the array is not closed") }
                    if bytes[index] == UInt8(ascii: "]") { index += 1; break }
                    guard bytes[index] == UInt8(ascii: ",") else {
                        throw HTTPError(400, "the body is not valid JSON: expected , or ] after message \(items.count - 1)")
                    }
                    index = skipWhitespace(bytes, from: index + 1)
                }
            }
            guard skipWhitespace(bytes, from: index) == bytes.count else {
                throw HTTPError(400, "the body is not valid JSON: something follows the array")
            }
            return items
        }
    }

    /// The byte ranges of the non-blank lines of an NDJSON `body` (without CR or LF), each checked
    /// against the per-item limit; 413 past a limit.
    func ndjsonLines(_ body: Data) throws -> [(line: Int, range: Range<Int>)] {
        try body.withUnsafeBytes { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            var lines: [(line: Int, range: Range<Int>)] = []
            var start = 0
            var number = 0
            while start <= bytes.count {
                number += 1
                var end = start
                while end < bytes.count, bytes[end] != 10 { end += 1 }
                let contentEnd = end > start && bytes[end - 1] == 13 ? end - 1 : end
                if skipWhitespace(bytes, from: start) < contentEnd {
                    guard lines.count < maximumItems else { throw tooMany() }
                    let valueEnd = try valueEnd(bytes, from: skipWhitespace(bytes, from: start), item: lines.count)
                    guard valueEnd <= contentEnd else { throw HTTPError(400, "NDJSON line \(number) is not valid JSON") }
                    lines.append((number, start..<contentEnd))
                }
                start = end + 1
            }
            return lines
        }
    }

    private func tooMany() -> HTTPError {
        HTTPError(413, "the batch holds more than \(maximumItems) messages; send at most \(maximumItems) per request")
    }

    /// Where the JSON value starting at `start` ends, counting its values against the limit.
    private func valueEnd(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, item: Int) throws -> Int {
        var index = start
        var depth = 0
        var values = 0
        repeat {
            guard index < bytes.count else { throw HTTPError(400, "the body is not valid JSON: message \(item) is cut off") }
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                values += 1
                index += 1
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                guard depth > 0 else { throw HTTPError(400, "the body is not valid JSON: message \(item) is empty or unbalanced") }
                depth -= 1
                index += 1
            case UInt8(ascii: "\""):
                values += 1
                index += 1
                while true {
                    guard index < bytes.count else { throw HTTPError(400, "the body is not valid JSON: a string in message \(item) is not closed") }
                    if bytes[index] == UInt8(ascii: "\\") { index += 2; continue }
                    index += 1
                    if bytes[index - 1] == UInt8(ascii: "\"") { break }
                }
            case UInt8(ascii: ","), UInt8(ascii: ":"), 32, 9, 10, 13:
                guard depth > 0 else { throw HTTPError(400, "the body is not valid JSON: message \(item) is empty") }
                index += 1
            default:
                // A number or literal: its run of bytes up to the next delimiter.
                values += 1
                while index < bytes.count, !Self.delimiters.contains(bytes[index]) { index += 1 }
            }
            guard values <= maximumValuesPerItem else {
                throw HTTPError(413, "message \(item) holds more than \(maximumValuesPerItem) JSON values; send a large payload as payload_base64 or as a single message")
            }
        } while depth > 0
        return index
    }

    private static let delimiters: Set<UInt8> = [UInt8(ascii: ","), UInt8(ascii: ":"), UInt8(ascii: "]"), UInt8(ascii: "}"),
                                                  UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: "\""), 32, 9, 10, 13]

    private func skipWhitespace(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        var index = start
        while index < bytes.count, bytes[index] == 32 || bytes[index] == 9 || bytes[index] == 10 || bytes[index] == 13 { index += 1 }
        return index
    }
}
