import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Sends HTTP requests with kept-alive connections, reused per host and port.
///
/// `http://` goes over Depot's own HTTP/1.1 wire, each connection with a thread of its own (fast,
/// and nothing blocks Swift's cooperative pool); `https://` goes through URLSession.
public final class HTTPClient: @unchecked Sendable {
    /// Idle connections (each with its thread) kept per host and port. Default 64.
    public let maximumIdlePerHost: Int
    /// Largest response body read. Default 64 MiB.
    public let limits: HTTPLimits
    private let lock = NSLock()
    private var idle: [String: [HTTPClientConnection]] = [:]

    public init(maximumIdlePerHost: Int = 64, limits: HTTPLimits = HTTPLimits(headBytes: 64 * 1024, bodyBytes: 64 * 1024 * 1024)) {
        self.maximumIdlePerHost = maximumIdlePerHost
        self.limits = limits
    }

    deinit { closeIdleConnections() }

    /// Sends `request` (its `target` is ignored; the URL's path and query are used) and returns
    /// the response, whatever its status. Throws `HTTPTransportError` when no response came.
    public func send(_ request: HTTPRequest, to url: URL, timeout: Duration) async throws -> HTTPResponse {
        guard let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else {
            throw HTTPTransportError.connect("\"\(url.redactedForDisplay)\" is not an http:// or https:// URL with a host")
        }
        if scheme == "https" { return try await sendWithURLSession(request, to: url, timeout: timeout) }
        guard scheme == "http" else {
            throw HTTPTransportError.connect("\"\(url.redactedForDisplay)\" has scheme \(scheme); use http:// or https://")
        }
        let port = url.port ?? 80
        var outgoing = request
        var components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        components?.scheme = nil
        components?.host = nil
        components?.port = nil
        let target = components?.string ?? "/"
        outgoing.target = target.isEmpty ? "/" : (target.hasPrefix("/") ? target : "/" + target)
        let hostHeader = url.port.map { "\(host):\($0)" } ?? host
        let prepared = outgoing
        let deadline = ContinuousClock.now + timeout
        let key = "\(host):\(port)"
        let connection = takeIdle(key) ?? HTTPClientConnection(key: key)
        return try await withCheckedThrowingContinuation { continuation in
            // On the connection's own thread: Dispatch's pools cap how many blocking calls run at
            // once (the global queues at the core count), and database work shares them.
            connection.submit { [self] in
                let result = Result {
                    try exchange(prepared, on: connection, host: host, port: port, hostHeader: hostHeader, deadline: deadline)
                }
                putIdle(connection)  // before resuming, so the caller's next request finds it
                continuation.resume(with: result)
            }
        }
    }

    /// Closes every idle connection and ends their threads.
    public func closeIdleConnections() {
        let connections = lock.withLock { () -> [HTTPClientConnection] in
            let all = idle.values.flatMap { $0 }
            idle.removeAll()
            return all
        }
        for connection in connections { connection.close() }
    }

    /// One exchange on `connection`'s thread; leaves the socket open only when it can be reused.
    private func exchange(_ request: HTTPRequest, on connection: HTTPClientConnection, host: String, port: Int, hostHeader: String,
                          deadline: ContinuousClock.Instant) throws -> HTTPResponse {
        if let wire = connection.wire, wire.socket.isStale || wire.hasBufferedBytes { connection.dropSocket() }
        // A kept-alive connection may have been closed by the server meanwhile: one retry on a fresh one.
        if let wire = connection.wire {
            do {
                return try roundTrip(request, on: connection, wire: wire, hostHeader: hostHeader, deadline: deadline)
            } catch HTTPTransportError.closed {
                connection.dropSocket()
            } catch let error as HTTPError {
                connection.dropSocket()
                throw HTTPTransportError.closed("malformed response: \(error.message)")
            } catch {
                connection.dropSocket()
                throw error
            }
        }
        let remaining = deadline - .now
        guard remaining > .zero else { throw HTTPTransportError.timeout }
        let wire = HTTPWire(socket: try Socket.connect(host: host, port: port, timeout: remaining))
        connection.wire = wire
        do {
            return try roundTrip(request, on: connection, wire: wire, hostHeader: hostHeader, deadline: deadline)
        } catch let error as HTTPError {
            connection.dropSocket()
            throw HTTPTransportError.closed("malformed response: \(error.message)")
        } catch {
            connection.dropSocket()
            throw error
        }
    }

    private func roundTrip(_ request: HTTPRequest, on connection: HTTPClientConnection, wire: HTTPWire, hostHeader: String,
                           deadline: ContinuousClock.Instant) throws -> HTTPResponse {
        try wire.write(request, host: hostHeader, deadline: deadline)
        var head: HTTPHead
        var status: Int
        // Interim answers (100 Continue, 103 Early Hints) come before the real one: skip them.
        repeat {
            guard let next = try wire.readHead(limits: limits, deadline: deadline) else {
                throw HTTPTransportError.closed("the server closed the connection without answering")
            }
            head = next
            guard head.startLine[0].hasPrefix("HTTP/1."), head.startLine[1].utf8.count == 3,
                  let parsed = Int(head.startLine[1]), (100...599).contains(parsed) else {
                throw HTTPError(502, "malformed status line \"\(HTTPWire.printable(head.startLine.joined(separator: " ")))\"")
            }
            status = parsed
            if status == 101 { throw HTTPError(502, "the server switched protocols (101), which Depot does not speak") }
        } while status < 200
        let hasNoBody = request.method == "HEAD" || status == 204 || status == 304
        let body = hasNoBody ? Data() : try wire.readBody(of: head, limits: limits, deadline: deadline, untilClose: true)
        let reusable = head.keepsAlive && (hasNoBody || head.headers["Content-Length"] != nil || head.headers["Transfer-Encoding"] != nil)
        if !reusable { connection.dropSocket() }
        return HTTPResponse(status: status, headers: head.headers, body: body)
    }

    private func takeIdle(_ key: String) -> HTTPClientConnection? {
        lock.withLock { idle[key]?.popLast() }
    }

    /// Keeps `connection` (and its thread) for the next request to its host, or ends it when enough are kept.
    private func putIdle(_ connection: HTTPClientConnection) {
        let kept = lock.withLock { () -> Bool in
            guard idle[connection.key, default: []].count < maximumIdlePerHost else { return false }
            idle[connection.key, default: []].append(connection)
            return true
        }
        if !kept { connection.close() }
    }

    private func sendWithURLSession(_ request: HTTPRequest, to url: URL, timeout: Duration) async throws -> HTTPResponse {
        var urlRequest = URLRequest(url: url)
        urlRequest.httpMethod = request.method
        urlRequest.timeoutInterval = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        for (name, value) in request.headers { urlRequest.addValue(value, forHTTPHeaderField: name) }
        if !request.body.isEmpty { urlRequest.httpBody = request.body }
        do {
            let (data, response) = try await URLSession.shared.data(for: urlRequest)
            guard let http = response as? HTTPURLResponse else { throw HTTPTransportError.closed("not an HTTP response") }
            var headers = HTTPHeaders()
            for (name, value) in http.allHeaderFields {
                headers.add(String(describing: name), String(describing: value))
            }
            return HTTPResponse(status: http.statusCode, headers: headers, body: data)
        } catch let error as URLError where error.code == .timedOut {
            throw HTTPTransportError.timeout
        } catch let error as URLError {
            throw HTTPTransportError.connect(error.localizedDescription)
        }
    }
}
