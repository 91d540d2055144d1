import Foundation

/// The start line and headers of a request or response, before its body.
struct HTTPHead {
    /// `[method, target, version]` for a request; `[version, status, reason]` for a response.
    var startLine: [String]
    var headers: HTTPHeaders

    /// Whether the sender keeps the connection open after this message.
    var keepsAlive: Bool {
        let version = startLine[0].hasPrefix("HTTP/") ? startLine[0] : startLine[2]
        // Most requests send no Connection header: no string search for them.
        guard let connection = headers["Connection"]?.lowercased() else { return version != "HTTP/1.0" }
        return version == "HTTP/1.0" ? connection.contains("keep-alive") : !connection.contains("close")
    }
}

/// Limits a reader enforces; a peer that exceeds one gets a clear status, not a crash.
public struct HTTPLimits: Sendable {
    /// Request or status line plus headers. Default 64 KiB (431 beyond).
    public var headBytes = 64 * 1024
    /// Body bytes. Default 10 MiB (413 beyond).
    public var bodyBytes = 10 * 1024 * 1024

    public init(headBytes: Int = 64 * 1024, bodyBytes: Int = 10 * 1024 * 1024) {
        self.headBytes = headBytes
        self.bodyBytes = bodyBytes
    }
}

/// Reads and writes HTTP/1.1 messages on one socket, with a buffer for what arrived early.
final class HTTPWire {
    let socket: Socket
    private var buffer: [UInt8] = []
    private var start = 0
    /// Bytes that arrived and are not read yet.
    var hasBufferedBytes: Bool { start < buffer.count }

    init(socket: Socket) { self.socket = socket }

    // MARK: Reading

    /// The next head; nil when the peer closed cleanly before sending a byte of it.
    ///
    /// Works on the buffer's bytes: it first finds where the head ends (without consuming the
    /// lines, so that a buffer compacted by `fill` keeps their offsets), then makes strings only
    /// of the parts (method, target, names, values). Line by line as `String`s, parsing showed up
    /// at about a tenth of a node's CPU under HTTP load.
    ///
    /// `requireUTF8` (the server's requests) refuses a start line or header value that is not valid
    /// UTF-8 with 400 instead of replacing the bad bytes with U+FFFD: two different keys
    /// (`caf\xe9`, `caf\xeb`) must not become one. Responses keep the lenient reading.
    func readHead(limits: HTTPLimits, deadline: ContinuousClock.Instant, requireUTF8: Bool = false) throws -> HTTPHead? {
        var lines: [Range<Int>] = []  // offsets from `start`, without CRLF
        var next = 0                  // where the next line begins, from `start`
        var searched = 0              // bytes of that line already searched for its LF
        var headBytes = 0
        while true {
            let lineStart = start + next
            guard let newline = buffer[(lineStart + searched)...].firstIndex(of: 10) else {
                if buffer.count - lineStart > limits.headBytes {
                    throw HTTPError(431, "a line exceeds \(limits.headBytes) bytes")
                }
                searched = buffer.count - lineStart
                if try fill(deadline: deadline) == 0 {
                    if lines.isEmpty && start == buffer.count { return nil }
                    throw HTTPError(400, "the connection closed in the middle of a message")
                }
                continue  // fill may have moved the unread bytes to the front; offsets still hold
            }
            guard newline > lineStart, buffer[newline - 1] == 13 else {
                throw HTTPError(400, "a line ends in a bare LF; HTTP lines end in CRLF")
            }
            let line = lineStart..<(newline - 1)
            guard !buffer[line].contains(0), !buffer[line].contains(13) else { throw HTTPError(400, "a line holds a NUL or bare CR") }
            searched = 0
            if line.isEmpty {
                if lines.isEmpty {
                    start = newline + 1  // tolerate blank lines before a request (RFC 9112 2.2)
                    continue
                }
                next = newline + 1 - start
                break
            }
            lines.append((line.lowerBound - start)..<(line.upperBound - start))
            next = newline + 1 - start
            headBytes += line.count + 2
            if headBytes > limits.headBytes {
                throw HTTPError(431, "request line and headers exceed \(limits.headBytes) bytes")
            }
        }
        let base = start
        start += next
        return try buffer.withUnsafeBufferPointer { bytes in
            try Self.parseHead(lines.map { UnsafeBufferPointer(rebasing: bytes[(base + $0.lowerBound)..<(base + $0.upperBound)]) },
                               requireUTF8: requireUTF8)
        }
    }

    /// The start line and headers from a head's lines (each without its CRLF).
    private static func parseHead(_ lines: [UnsafeBufferPointer<UInt8>], requireUTF8: Bool) throws -> HTTPHead {
        let first = lines[0]
        if requireUTF8, first.contains(where: { $0 >= 0x80 }), String(validating: first, as: UTF8.self) == nil {
            throw HTTPError(400, "the request line is not valid UTF-8; percent-encode the path")
        }
        var startLine: [String] = []
        var from = first.startIndex
        while startLine.count < 2, let space = first[from...].firstIndex(of: 32) {
            startLine.append(String(decoding: first[from..<space], as: UTF8.self))
            from = space + 1
        }
        startLine.append(String(decoding: first[from...], as: UTF8.self))
        // A status line may have an empty reason phrase ("HTTP/1.1 200 "), or none at all.
        if startLine.first?.hasPrefix("HTTP/") == true && startLine.count == 2 { startLine.append("") }
        let required = startLine.first?.hasPrefix("HTTP/") == true ? startLine.prefix(2) : startLine[...]
        guard startLine.count == 3, required.allSatisfy({ !$0.isEmpty }) else {
            throw HTTPError(400, "malformed start line \"\(printable(String(decoding: first, as: UTF8.self)))\"; expected e.g. \"POST /path HTTP/1.1\"")
        }
        var headers = HTTPHeaders()
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: 58), line[line.startIndex] != 32, line[line.startIndex] != 9 else {
                throw HTTPError(400, "malformed header line \"\(printable(String(decoding: line, as: UTF8.self)))\"; expected \"Name: value\"")
            }
            let name = line[line.startIndex..<colon]
            guard !name.isEmpty, name.allSatisfy({ isTokenCharacter(Unicode.Scalar($0)) }) else {
                throw HTTPError(400, "malformed header name \"\(printable(String(decoding: name, as: UTF8.self)))\"")
            }
            var value = line[(colon + 1)...]
            while let byte = value.first, byte == 32 || byte == 9 { value = value.dropFirst() }
            while let byte = value.last, byte == 32 || byte == 9 { value = value.dropLast() }
            if requireUTF8, value.contains(where: { $0 >= 0x80 }), String(validating: value, as: UTF8.self) == nil {
                throw HTTPError(400, "the value of header \(String(decoding: name, as: UTF8.self)) is not valid UTF-8; send UTF-8 text")
            }
            headers.add(String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
        }
        return HTTPHead(startLine: startLine, headers: headers)
    }

    /// The body that `head` announces. `noBody` for responses to HEAD and statuses without one.
    /// `untilClose` reads to end of stream when neither length nor chunking is given (responses only).
    func readBody(of head: HTTPHead, limits: HTTPLimits, deadline: ContinuousClock.Instant, untilClose: Bool) throws -> Data {
        let encodings = head.headers.values("Transfer-Encoding")
        let lengths = head.headers.values("Content-Length")
        if !encodings.isEmpty {
            guard lengths.isEmpty else { throw HTTPError(400, "both Transfer-Encoding and Content-Length are set; send one") }
            guard encodings.count == 1, encodings[0].lowercased() == "chunked" else {
                throw HTTPError(501, "Transfer-Encoding \"\(encodings.joined(separator: ", "))\" is not supported; send chunked or a Content-Length")
            }
            return try readChunks(limit: limits.bodyBytes, deadline: deadline)
        }
        if let first = lengths.first {
            guard lengths.allSatisfy({ $0 == first }), !first.isEmpty, first.utf8.count <= 18,
                  first.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let length = Int(first) else {
                throw HTTPError(400, "Content-Length \"\(Self.printable(lengths.joined(separator: ", ")))\" is not a non-negative integer")
            }
            guard length <= limits.bodyBytes else {
                throw HTTPError(413, "body of \(length) bytes exceeds the limit of \(limits.bodyBytes) bytes")
            }
            return try readBody(length, deadline: deadline)
        }
        guard untilClose else { return Data() }
        var body = takeBuffered(buffer.count - start)  // what arrived with the head
        while body.count <= limits.bodyBytes, try fill(deadline: deadline) > 0 {
            body += takeBuffered(buffer.count - start)
        }
        if body.count > limits.bodyBytes { throw HTTPError(413, "body exceeds the limit of \(limits.bodyBytes) bytes") }
        return Data(body)
    }

    private func readChunks(limit: Int, deadline: ContinuousClock.Instant) throws -> Data {
        var body: [UInt8] = []
        while true {
            let line = try readLine(limit: 1024, deadline: deadline)
            guard let size = Self.chunkSize(line) else {
                throw HTTPError(400, "malformed chunk size \"\(Self.printable(line))\"; a chunk size is hexadecimal digits alone (RFC 9112 7.1)")
            }
            if size == 0 {
                // Trailer fields, ignored, up to the empty line.
                while try !readLine(limit: 8192, deadline: deadline).isEmpty {}
                return Data(body)
            }
            guard body.count + size <= limit else { throw HTTPError(413, "chunked body exceeds the limit of \(limit) bytes") }
            body += try readExactly(size, deadline: deadline)
            guard try readLine(limit: 2, deadline: deadline) == "" else {
                throw HTTPError(400, "chunk data is longer than its size says")
            }
        }
    }

    /// The size of a chunk line: 1 to 15 hex digits, then nothing or extensions after `;` (with
    /// optional spaces before it). Nil for anything else: a sign, a leading space, a trailing
    /// space, `0x`. Two parsers that read `+5` or ` 5` differently let a request hide behind another.
    static func chunkSize(_ line: String) -> Int? {
        let bytes = Array(line.utf8)
        var end = 0
        while end < bytes.count, isHexDigit(bytes[end]) { end += 1 }
        guard end > 0, end <= 15 else { return nil }
        if end < bytes.count {
            guard let next = bytes[end...].first(where: { $0 != 32 && $0 != 9 }), next == UInt8(ascii: ";") else { return nil }
        }
        return Int(String(decoding: bytes[..<end], as: UTF8.self), radix: 16)
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (48...57).contains(byte) || (65...70).contains(byte) || (97...102).contains(byte)
    }

    /// A line of a chunked body without its CRLF.
    private func readLine(limit: Int, deadline: ContinuousClock.Instant) throws -> String {
        var scanFrom = start
        while true {
            if let newline = buffer[scanFrom...].firstIndex(of: 10) {
                guard newline > start, buffer[newline - 1] == 13 else {
                    throw HTTPError(400, "a line ends in a bare LF; HTTP lines end in CRLF")
                }
                let bytes = buffer[start..<(newline - 1)]
                start = newline + 1
                guard !bytes.contains(0), !bytes.contains(13) else { throw HTTPError(400, "a line holds a NUL or bare CR") }
                return String(decoding: bytes, as: UTF8.self)
            }
            if buffer.count - start > limit {
                throw HTTPError(431, "a line exceeds \(limit) bytes")
            }
            let scanned = buffer.count - start
            if try fill(deadline: deadline) == 0 {
                throw HTTPError(400, "the connection closed in the middle of a message")
            }
            scanFrom = start + scanned  // fill may have moved the unread bytes to the front
        }
    }

    /// `count` body bytes straight into the `Data` that keeps them: what is buffered, then the
    /// rest read from the socket into place. Through the buffer, a 10 MiB body took three copies
    /// at once (the grown buffer, an array, the `Data`), and 16 of them at once 450 MiB.
    private func readBody(_ count: Int, deadline: ContinuousClock.Instant) throws -> Data {
        let buffered = min(count, buffer.count - start)
        var body = Data(count: count)
        try body.withUnsafeMutableBytes { destination in
            buffer.withUnsafeBytes { source in
                destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[start..<(start + buffered)]))
            }
            start += buffered
            var filled = buffered
            while filled < count {
                let read = try socket.read(into: UnsafeMutableRawBufferPointer(rebasing: destination[filled..<count]), deadline: deadline)
                if read == 0 { throw HTTPError(400, "the connection closed after \(filled) of \(count) body bytes") }
                filled += read
            }
        }
        return body
    }

    private func readExactly(_ count: Int, deadline: ContinuousClock.Instant) throws -> [UInt8] {
        while buffer.count - start < count {
            if try fill(deadline: deadline) == 0 {
                throw HTTPError(400, "the connection closed after \(buffer.count - start) of \(count) body bytes")
            }
        }
        return takeBuffered(count)
    }

    private func takeBuffered(_ count: Int) -> [UInt8] {
        let bytes = Array(buffer[start..<(start + count)])
        start += count
        return bytes
    }

    /// Reads more into the buffer; returns how many bytes arrived (0 at end of stream).
    private func fill(deadline: ContinuousClock.Instant) throws -> Int {
        compact()
        return try socket.read(appendingTo: &buffer, deadline: deadline)
    }

    /// Waits, at most the socket's receive timeout, until a byte of the next message is buffered
    /// or the peer closed (the read that follows tells which); false when the timeout passed first.
    func awaitInput() -> Bool {
        if hasBufferedBytes { return true }
        compact()
        return socket.receiveWaiting(appendingTo: &buffer)
    }

    /// Drops the bytes already read, when that frees the whole buffer or a lot of it.
    private func compact() {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 65536 {
            buffer.removeSubrange(0..<start)
            start = 0
        }
    }

    // MARK: Writing

    func write(_ request: HTTPRequest, host: String, deadline: ContinuousClock.Instant) throws {
        var head = "\(request.method) \(request.target) HTTP/1.1\r\n"
        if request.headers["Host"] == nil { head += "Host: \(host)\r\n" }
        try writeMessage(head: head, headers: request.headers, body: request.body, deadline: deadline)
    }

    func write(_ response: HTTPResponse, keepAlive: Bool, deadline: ContinuousClock.Instant) throws {
        try writeMessage(head: Self.statusLine(response, keepAlive: keepAlive), headers: response.headers, body: response.body, deadline: deadline)
    }

    /// The head of `response`: status line, headers and Content-Length.
    static func encode(head response: HTTPResponse, keepAlive: Bool) throws -> [UInt8] {
        try encode(head: statusLine(response, keepAlive: keepAlive), headers: response.headers, body: response.body)
    }

    private static func statusLine(_ response: HTTPResponse, keepAlive: Bool) -> String {
        "HTTP/1.1 \(response.status) \(HTTPStatus.reason(response.status))\r\n" + (keepAlive ? "" : "Connection: close\r\n")
    }

    /// Head and body in one buffer and, up to 64 KiB of body, one `send`.
    private func writeMessage(head: String, headers: HTTPHeaders, body: Data, deadline: ContinuousClock.Instant) throws {
        var bytes = try Self.encode(head: head, headers: headers, body: body)
        if body.count <= 65536 {
            bytes += body
            try socket.write(bytes, deadline: deadline)
        } else {
            try socket.write(bytes, deadline: deadline)
            try socket.write(body, deadline: deadline)
        }
    }

    /// The bytes of a head: `head` (the start line and any fixed fields), `headers`, then Content-Length.
    static func encode(head: String, headers: HTTPHeaders, body: Data) throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256 + (body.count <= 65536 ? body.count : 0))
        bytes += head.utf8
        for (name, value) in headers where !HTTPHeaders.sameName(name, "Content-Length") && !HTTPHeaders.sameName(name, "Transfer-Encoding") {
            // A name or value that could split the message is refused, never sent.
            if let problem = HTTPHeaders.problem(name: name, value: value) { throw HTTPError(400, problem) }
            bytes += name.utf8
            bytes += [58, 32]  // ": "
            bytes += value.utf8
            bytes += [13, 10]
        }
        bytes += "Content-Length: \(body.count)\r\n\r\n".utf8
        return bytes
    }

    // MARK: Helpers

    /// ASCII letters, digits and ``!#$%&'*+-.^_`|~`` (RFC 9110 5.6.2), without Foundation's CharacterSet (slow here).
    static func isTokenCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 48...57, 65...90, 97...122, 33, 35...39, 42, 43, 45, 46, 94...96, 124, 126: true
        default: false
        }
    }

    /// At most 80 characters of `text`, safe to echo in an error.
    static func printable(_ text: String) -> String {
        let cleaned = String(text.unicodeScalars.map { $0.isASCII && $0.value >= 32 && $0.value < 127 ? Character($0) : "?" })
        return cleaned.count > 80 ? String(cleaned.prefix(80)) + "…" : cleaned
    }
}
