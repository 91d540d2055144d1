import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A TCP socket with blocking calls bounded by deadlines (poll before every read and write).
///
/// Calls that may wait (those taking a deadline) run on dedicated threads only, never on Swift's
/// cooperative pool; `writeWithoutWaiting` never waits, so a task may call it.
final class Socket: @unchecked Sendable {
    private(set) var descriptor: Int32
    /// Where `recv` lands before the bytes join the caller's buffer (allocated on the first read).
    private var scratch: UnsafeMutableRawBufferPointer?
    static let scratchSize = 65536

    init(descriptor: Int32) {
        self.descriptor = descriptor
        var on: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        #if canImport(Darwin)
        setsockopt(descriptor, SOL_SOCKET, SO_NOSIGPIPE, &on, socklen_t(MemoryLayout<Int32>.size))
        #endif
    }

    deinit {
        close()
        scratch?.deallocate()
    }

    func close() {
        if descriptor >= 0 {
            _ = systemClose(descriptor)
            descriptor = -1
        }
    }

    /// Stops reads and writes in both directions; a thread blocked on this socket wakes up.
    func shutdown() {
        if descriptor >= 0 { _ = systemShutdown(descriptor, Int32(SHUT_RDWR)) }
    }

    /// Says "no more from me" and reads (and drops) what the peer still sends until it closes,
    /// `deadline` passes or `limit` bytes went by. Closing with unread input would reset the
    /// connection, and the peer could lose the error response written just before.
    func lingeringClose(deadline: ContinuousClock.Instant, limit: Int = 64 << 20) {
        guard descriptor >= 0 else { return }
        _ = systemShutdown(descriptor, Int32(SHUT_WR))
        var drained = 0
        while drained < limit, let bytes = try? read(maximum: 65536, deadline: deadline), !bytes.isEmpty {
            drained += bytes.count
        }
    }

    /// Connects to `host:port` (a name or an address), giving up after `timeout`.
    static func connect(host: String, port: Int, timeout: Duration) throws -> Socket {
        let deadline = ContinuousClock.now + timeout
        var lastError = "no address found"
        for address in try resolve(host: host, port: port, passive: false) {
            let fd = socket(address.family, Int32(socketStream), 0)
            guard fd >= 0 else { lastError = String(cString: strerror(errno)); continue }
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            let result = address.storage.withUnsafeBytes {
                systemConnect(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), address.length)
            }
            if result == 0 || errno == EINPROGRESS {
                // SO_ERROR is read once: reading it clears it, and a second read made a refused
                // connection look like one that "timed out after 29.999884337 seconds".
                let ready = result == 0 || Socket.poll(fd, events: Int16(POLLOUT), deadline: deadline)
                let code = result == 0 || !ready ? 0 : Socket.pendingError(fd)
                if ready && code == 0 {
                    _ = fcntl(fd, F_SETFL, flags)
                    return Socket(descriptor: fd)
                }
                lastError = ready ? String(cString: strerror(code)) : "timed out after \(timeout)"
            } else {
                lastError = String(cString: strerror(errno))
            }
            _ = systemClose(fd)
        }
        throw HTTPTransportError.connect("cannot connect to \(host):\(port): \(lastError)")
    }

    /// Listens on `host:port`; port 0 picks a free port (see `localPort`).
    static func listen(host: String, port: Int, backlog: Int32 = 1024) throws -> Socket {
        guard let address = try resolve(host: host, port: port, passive: true).first else {
            throw HTTPTransportError.listen("cannot listen on \(host):\(port): no address found")
        }
        let fd = socket(address.family, Int32(socketStream), 0)
        guard fd >= 0 else { throw HTTPTransportError.listen("cannot open a socket: \(String(cString: strerror(errno)))") }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        let bound = address.storage.withUnsafeBytes {
            bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), address.length)
        }
        guard bound == 0, systemListen(fd, backlog) == 0 else {
            let reason = String(cString: strerror(errno))
            _ = systemClose(fd)
            throw HTTPTransportError.listen("cannot listen on \(host):\(port): \(reason)")
        }
        return Socket(descriptor: fd)
    }

    /// The port this socket is bound to.
    var localPort: Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard result == 0 else { return 0 }
        let family = storage.ss_family
        return withUnsafePointer(to: &storage) { pointer -> Int in
            if family == sa_family_t(AF_INET6) {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }

    /// Waits for a connection; nil when the listener was shut down or `timeout` passed.
    func accept(timeout: Duration) -> Socket? {
        guard Socket.poll(descriptor, events: Int16(POLLIN), deadline: ContinuousClock.now + timeout) else { return nil }
        let fd = systemAccept(descriptor, nil, nil)
        return fd >= 0 ? Socket(descriptor: fd) : nil
    }

    /// Bounds how long `receiveWaiting` waits for input.
    func setReceiveTimeout(_ timeout: Duration) {
        let (seconds, attoseconds) = timeout.components
        var value = timeval(tv_sec: Int(max(seconds, 0)), tv_usec: Int(attoseconds / 1_000_000_000_000))
        if value.tv_sec == 0 && value.tv_usec == 0 { value.tv_usec = 1 }  // 0 would mean "wait forever"
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Waits for input (at most the receive timeout) and appends what arrived to `buffer`: one
    /// syscall where poll and then recv were two, paid on every request of a kept-alive
    /// connection. False when the timeout passed with nothing; true at end of stream or on an
    /// error too, which the next read reports.
    func receiveWaiting(appendingTo buffer: inout [UInt8]) -> Bool {
        let scratch = scratchBuffer()
        while true {
            let count = recv(descriptor, scratch.baseAddress, scratch.count, 0)
            if count > 0 { buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[0..<count])) }
            if count >= 0 { return true }
            if errno == EINTR { continue }
            return !(errno == EAGAIN || errno == EWOULDBLOCK)
        }
    }

    private func scratchBuffer() -> UnsafeMutableRawBufferPointer {
        if let scratch { return scratch }
        let fresh = UnsafeMutableRawBufferPointer.allocate(byteCount: Socket.scratchSize, alignment: 16)
        scratch = fresh
        return fresh
    }

    /// Reads what is there (at most `maximum` bytes); empty at end of stream.
    func read(maximum: Int, deadline: ContinuousClock.Instant) throws -> [UInt8] {
        var bytes: [UInt8] = []
        _ = try read(appendingTo: &bytes, maximum: maximum, deadline: deadline)
        return bytes
    }

    /// Appends what is there (at most `maximum` bytes) to `buffer`; returns how many (0 at end of stream).
    /// Tries first and polls only when nothing has arrived yet: one syscall when input is waiting.
    func read(appendingTo buffer: inout [UInt8], maximum: Int = Socket.scratchSize, deadline: ContinuousClock.Instant) throws -> Int {
        let scratch = scratchBuffer()
        while true {
            let count = recv(descriptor, scratch.baseAddress, min(maximum, scratch.count), Int32(MSG_DONTWAIT))
            if count >= 0 {
                buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[0..<count]))
                return count
            }
            if errno == EINTR { continue }
            guard errno == EAGAIN || errno == EWOULDBLOCK else { throw HTTPTransportError.closed(String(cString: strerror(errno))) }
            guard Socket.poll(descriptor, events: Int16(POLLIN), deadline: deadline) else { throw HTTPTransportError.timeout }
        }
    }

    /// Reads what is there into `destination` (at most its size); returns how many bytes (0 at
    /// end of stream). Lets a large body land where it will stay, without a copy through a buffer.
    func read(into destination: UnsafeMutableRawBufferPointer, deadline: ContinuousClock.Instant) throws -> Int {
        while true {
            let count = recv(descriptor, destination.baseAddress, destination.count, Int32(MSG_DONTWAIT))
            if count >= 0 { return count }
            if errno == EINTR { continue }
            guard errno == EAGAIN || errno == EWOULDBLOCK else { throw HTTPTransportError.closed(String(cString: strerror(errno))) }
            guard Socket.poll(descriptor, events: Int16(POLLIN), deadline: deadline) else { throw HTTPTransportError.timeout }
        }
    }

    /// Writes all of `bytes` or throws. Sends first and polls only when the socket buffer is full.
    func write(_ bytes: some ContiguousBytes, deadline: ContinuousClock.Instant) throws {
        try bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let sent = send(descriptor, raw.baseAddress! + offset, raw.count - offset, Int32(noSignal) | Int32(MSG_DONTWAIT))
                if sent >= 0 {
                    offset += sent
                    continue
                }
                if errno == EINTR { continue }
                guard errno == EAGAIN || errno == EWOULDBLOCK else { throw HTTPTransportError.closed(String(cString: strerror(errno))) }
                guard Socket.poll(descriptor, events: Int16(POLLOUT), deadline: deadline) else { throw HTTPTransportError.timeout }
            }
        }
    }

    /// Sends what fits without waiting; returns how many bytes went (0 when the buffer is full).
    func writeWithoutWaiting(_ raw: UnsafeRawBufferPointer) throws -> Int {
        var offset = 0
        while offset < raw.count {
            let sent = send(descriptor, raw.baseAddress! + offset, raw.count - offset, Int32(noSignal) | Int32(MSG_DONTWAIT))
            if sent >= 0 {
                offset += sent
                continue
            }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { break }
            throw HTTPTransportError.closed(String(cString: strerror(errno)))
        }
        return offset
    }

    /// True when bytes, or the peer's close, arrive within `timeout`.
    func isReadable(within timeout: Duration) -> Bool {
        Self.poll(descriptor, events: Int16(POLLIN), deadline: .now + timeout)
    }

    /// True when the peer has closed or sent something unexpected while the socket sat idle.
    var isStale: Bool {
        var probe = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return systemPoll(&probe, 1, 0) != 0
    }

    // MARK: - Helpers

    private static func poll(_ fd: Int32, events: Int16, deadline: ContinuousClock.Instant) -> Bool {
        while true {
            let remaining = deadline - ContinuousClock.now
            let milliseconds = max(0, Int32(clamping: remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000))
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let result = systemPoll(&entry, 1, milliseconds)
            if result > 0 { return true }
            if result == 0 { return false }
            if errno != EINTR { return true }  // let the read or write report the error
        }
    }

    private static func pendingError(_ fd: Int32) -> Int32 {
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
        return code
    }

    private struct Address {
        var family: Int32
        var storage: [UInt8]
        var length: socklen_t
    }

    private static func resolve(host: String, port: Int, passive: Bool) throws -> [Address] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(socketStream)
        hints.ai_family = AF_UNSPEC
        if passive { hints.ai_flags = AI_PASSIVE }
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host.isEmpty ? nil : host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw HTTPTransportError.connect("cannot resolve host \"\(host)\": \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var addresses: [Address] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            let bytes = [UInt8](UnsafeRawBufferPointer(start: entry.pointee.ai_addr, count: Int(entry.pointee.ai_addrlen)))
            addresses.append(Address(family: entry.pointee.ai_family, storage: bytes, length: entry.pointee.ai_addrlen))
            cursor = entry.pointee.ai_next
        }
        // IPv4 first: "localhost" then means 127.0.0.1, where the local servers listen.
        return addresses.sorted { $0.family == AF_INET && $1.family != AF_INET }
    }
}

/// A failure below HTTP: the connection could not be made, timed out, or broke.
public enum HTTPTransportError: Error, Sendable, CustomStringConvertible, Equatable {
    case connect(String)
    case listen(String)
    case timeout
    case closed(String)

    public var description: String {
        switch self {
        case .connect(let reason), .listen(let reason): reason
        case .timeout: "timed out"
        case .closed(let reason): "connection closed: \(reason)"
        }
    }
}

#if canImport(Glibc)
private let socketStream = SOCK_STREAM.rawValue
private let noSignal = MSG_NOSIGNAL
#else
private let socketStream = SOCK_STREAM
private let noSignal: Int32 = 0
#endif
private func systemClose(_ fd: Int32) -> Int32 { close(fd) }
private func systemShutdown(_ fd: Int32, _ how: Int32) -> Int32 { shutdown(fd, how) }
private func systemConnect(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 { connect(fd, address, length) }
private func systemListen(_ fd: Int32, _ backlog: Int32) -> Int32 { listen(fd, backlog) }
private func systemAccept(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: UnsafeMutablePointer<socklen_t>?) -> Int32 { accept(fd, address, length) }
private func systemPoll(_ entries: UnsafeMutablePointer<pollfd>, _ count: nfds_t, _ timeout: Int32) -> Int32 { poll(entries, count, timeout) }
