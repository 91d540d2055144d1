import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Drives many keep-alive HTTP/1.1 connections to a loopback server from one thread with poll(2),
/// one request in flight per connection, as `wrk` does: the load generator shares this 2-core
/// machine with the node and PostgreSQL, so it must cost little per request (a thread per
/// client cost more CPU than the server it measured).
struct HTTPLoadGenerator {
    /// What a run did: answers counted by whether they had the accepted status, and each answer's latency.
    struct Outcome {
        var accepted = 0
        var refused = 0
        var latencies: [Duration] = []

        /// The answers' latencies as percentiles.
        var latencySummary: LatencyRecorder.Summary {
            let recorder = LatencyRecorder()
            for latency in latencies { recorder.record(latency) }
            return recorder.summary()
        }
    }

    let port: Int
    let connections: Int
    /// The whole request, sent again as is each time.
    let request: [UInt8]
    /// The status that counts as accepted; any other is refused.
    let acceptedStatus: Int
    /// Time between one connection's requests (nil: the next as soon as the answer is in). A
    /// connection whose answer comes later than that sends at once, so the offered rate holds
    /// while the server keeps up and shows when it does not.
    var interval: Duration? = nil
    /// Makes each request afresh (e.g. with the moment it is sent in its body); nil sends `request`.
    var makeRequest: (@Sendable () -> [UInt8])? = nil

    /// Runs until `seconds` have passed, on a thread of its own (never the cooperative pool).
    func run(seconds: Int) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try runBlocking(until: .now + .seconds(seconds)) }) }
            thread.name = "depot.bench.http-load"
            thread.start()
        }
    }

    private struct Client {
        var descriptor: Int32
        var buffer: [UInt8] = []
        var started = ContinuousClock.now
        /// When a paced connection sends next; nil while a request is in flight.
        var due: ContinuousClock.Instant?
    }

    private func runBlocking(until deadline: ContinuousClock.Instant) throws -> Outcome {
        var clients: [Client] = []
        defer { for client in clients { close(client.descriptor) } }
        for _ in 0..<connections { clients.append(Client(descriptor: try connectLoopback())) }
        var result = Outcome()
        result.latencies.reserveCapacity(1 << 20)
        // Paced connections start spread over one interval, not all in the same instant.
        let start = ContinuousClock.now
        for index in clients.indices {
            if let interval { clients[index].due = start + interval * (Double(index) / Double(connections)) } else { try send(&clients[index]) }
        }
        var polled = clients.map { pollfd(fd: $0.descriptor, events: Int16(POLLIN), revents: 0) }
        var scratch = [UInt8](repeating: 0, count: 65536)
        while ContinuousClock.now < deadline {
            if interval != nil { try sendDue(&clients) }
            let ready = poll(&polled, nfds_t(polled.count), pollTimeout(clients))
            if ready < 0 && errno == EINTR { continue }
            guard ready >= 0 else { throw BenchFailure("poll failed: \(String(cString: strerror(errno)))") }
            for index in polled.indices where polled[index].revents != 0 {
                let count = scratch.withUnsafeMutableBytes { recv(clients[index].descriptor, $0.baseAddress, $0.count, 0) }
                if count < 0 && (errno == EAGAIN || errno == EINTR) { continue }
                guard count > 0 else { throw BenchFailure("the server closed a kept-alive connection during the HTTP load") }
                clients[index].buffer.append(contentsOf: scratch[0..<count])
                while let status = try takeResponse(&clients[index].buffer) {
                    result.latencies.append(.now - clients[index].started)
                    if status == acceptedStatus { result.accepted += 1 } else { result.refused += 1 }
                    guard ContinuousClock.now < deadline else { continue }
                    if let interval {
                        clients[index].due = max(clients[index].started + interval, .now)
                    } else {
                        try send(&clients[index])
                    }
                }
            }
        }
        return result
    }

    /// Sends on every paced connection whose time has come.
    private func sendDue(_ clients: inout [Client]) throws {
        let now = ContinuousClock.now
        for index in clients.indices {
            guard let due = clients[index].due, due <= now else { continue }
            try send(&clients[index])
        }
    }

    /// Milliseconds poll(2) may wait: until the next paced send, at most 100.
    private func pollTimeout(_ clients: [Client]) -> Int32 {
        guard interval != nil, let next = clients.compactMap(\.due).min() else { return 100 }
        let milliseconds = (next - .now).benchSeconds * 1000
        return Int32(max(0, min(100, milliseconds.rounded(.up))))
    }

    private func send(_ client: inout Client) throws {
        client.started = .now
        client.due = nil
        let bytes = makeRequest?() ?? request
        let sent = bytes.withUnsafeBytes { Glibc.send(client.descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        // A request of a few hundred bytes always fits an empty socket buffer.
        guard sent == bytes.count else { throw BenchFailure("sending an HTTP request failed: \(String(cString: strerror(errno)))") }
    }

    /// Removes one whole response from the front of `buffer` and returns its status, or nil when
    /// it has not all arrived. Reads bytes, not strings: this runs once per request on the
    /// machine being measured.
    private func takeResponse(_ buffer: inout [UInt8]) throws -> Int? {
        guard let headEnd = Self.endOfHead(buffer) else { return nil }
        let head = buffer.prefix(200)
        let malformed = { BenchFailure("malformed HTTP response head: \(String(decoding: head, as: UTF8.self))") }
        // "HTTP/1.1 202 …": three digits at offset 9.
        guard headEnd >= 12, buffer[8] == 32 else { throw malformed() }
        var status = 0
        for byte in buffer[9..<12] {
            guard (48...57).contains(byte) else { throw malformed() }
            status = status * 10 + Int(byte - 48)
        }
        let length = Self.contentLength(buffer[..<headEnd]) ?? 0
        guard buffer.count >= headEnd + length else { return nil }
        buffer.removeFirst(headEnd + length)
        return status
    }

    /// The offset just past the blank line that ends the head, if it has arrived.
    private static func endOfHead(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 3..<bytes.count where bytes[index] == 10 && bytes[index - 1] == 13 && bytes[index - 2] == 10 && bytes[index - 3] == 13 {
            return index + 1
        }
        return nil
    }

    private static let contentLengthName = Array("content-length:".utf8)

    /// The Content-Length header's value in `head`, compared without regard to case.
    private static func contentLength(_ head: ArraySlice<UInt8>) -> Int? {
        var lineStart = head.startIndex
        while let newline = head[lineStart...].firstIndex(of: 10) {
            let line = head[lineStart..<newline]
            lineStart = newline + 1
            guard line.count > contentLengthName.count,
                  zip(line, contentLengthName).allSatisfy({ ($0 | 0x20) == $1 }) else { continue }
            var value = 0
            for byte in line.dropFirst(contentLengthName.count) where (48...57).contains(byte) { value = value * 10 + Int(byte - 48) }
            return value
        }
        return nil
    }

    private func connectLoopback() throws -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw BenchFailure("socket failed: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(descriptor)
            throw BenchFailure("connecting to 127.0.0.1:\(port) failed: \(String(cString: strerror(errno)))")
        }
        var on: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        return descriptor
    }
}
