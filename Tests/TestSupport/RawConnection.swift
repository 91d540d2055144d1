import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One blocking keep-alive TCP connection for tests that send requests byte for byte. Use it
/// on a thread of its own (see `onThreads`), never on the cooperative pool.
public final class RawConnection: @unchecked Sendable {
    public let descriptor: Int32
    private var received: [UInt8] = []

    /// Connects to 127.0.0.1:`port`; reads give up after `timeout`.
    public init(port: Int, timeout: Duration = .seconds(10)) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(descriptor)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .ECONNREFUSED)
        }
        var value = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(descriptor) }

    /// Sends all of `bytes`; false when the peer stopped taking them.
    @discardableResult
    public func send(_ bytes: some Collection<UInt8>) -> Bool {
        let array = Array(bytes)
        var offset = 0
        while offset < array.count {
            let sent = array.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress! + offset, array.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }

    /// The next response's status and body (Content-Length framing only); nil when the
    /// connection closed or the read timed out first.
    public func readResponse() -> (status: Int, body: String)? {
        readResponseWithHeaders().map { ($0.status, $0.body) }
    }

    /// The next response's status, headers (names in lower case) and body (Content-Length
    /// framing only); nil when the connection closed or the read timed out first.
    public func readResponseWithHeaders() -> (status: Int, headers: [String: String], body: String)? {
        while true {
            if let end = headEnd() {
                let lines = String(decoding: received[..<end], as: UTF8.self).split(separator: "\r\n")
                let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
                var headers: [String: String] = [:]
                for line in lines.dropFirst() {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
                let length = headers["content-length"].flatMap(Int.init) ?? 0
                if received.count >= end + 4 + length {
                    let body = String(decoding: received[(end + 4)..<(end + 4 + length)], as: UTF8.self)
                    received.removeFirst(end + 4 + length)
                    return (status, headers, body)
                }
            }
            guard readMore() else { return nil }
        }
    }

    /// Waits until the peer closes; true when it did before the read timeout.
    public func awaitClose() -> Bool {
        while true {
            var buffer = [UInt8](repeating: 0, count: 65536)
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, 65536, 0) }
            if count == 0 { return true }
            if count < 0 { return errno == ECONNRESET }
        }
    }

    private func headEnd() -> Int? {
        guard received.count >= 4 else { return nil }
        for index in 0...(received.count - 4) where received[index] == 13 && received[index + 1] == 10 && received[index + 2] == 13 && received[index + 3] == 10 {
            return index
        }
        return nil
    }

    private func readMore() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, 65536, 0) }
        guard count > 0 else { return false }
        received += buffer[0..<count]
        return true
    }
}

/// Runs `body(0)`…`body(count - 1)` on threads of their own at once and returns their results
/// in order, for blocking socket work off the cooperative pool.
public func onThreads<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) throws -> T) async throws -> [T] {
    try await withThrowingTaskGroup(of: (Int, T).self) { group in
        for index in 0..<count {
            group.addTask {
                try await withCheckedThrowingContinuation { continuation in
                    let thread = Thread { continuation.resume(with: Result { (index, try body(index)) }) }
                    thread.stackSize = 1 << 20
                    thread.start()
                }
            }
        }
        var results: [(Int, T)] = []
        for try await result in group { results.append(result) }
        return results.sorted { $0.0 < $1.0 }.map(\.1)
    }
}
