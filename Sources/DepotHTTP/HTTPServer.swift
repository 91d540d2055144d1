import Foundation

/// A small HTTP/1.1 server: one listening thread, one thread per connection reading requests
/// (handlers run as tasks and write their own answers), keep-alive,
/// and limits and timeouts so that a slow, huge or malformed request costs only its own
/// connection. Any failure to parse becomes a status and a JSON error, never a crash.
public final class HTTPServer: @unchecked Sendable {
    /// Where to listen and what to tolerate.
    public struct Configuration: Sendable {
        public var host: String
        /// 0 picks a free port; read it from `port` after `start()`.
        public var port: Int
        public var limits: HTTPLimits
        /// How long a kept-alive connection may sit without a request after its first. Default 60 s.
        public var idleTimeout: Duration
        /// How long one request may take to arrive once it has begun, and how long a new
        /// connection may wait before its first byte. Default 10 s.
        public var requestTimeout: Duration
        /// Connections beyond this close the longest idle one (waiting for a request, no answer
        /// owed), or get 503 and are closed when none is idle. Default 1024.
        public var maximumConnections: Int
        /// Told the status of every response written, errors included (for metrics). Default nil.
        public var onResponse: (@Sendable (Int) -> Void)?
        /// Looks at a request's head (its body empty) before the body is read: a response it
        /// returns is sent instead, and the connection closed without reading the body (a 401
        /// must not cost the server the body of a caller it does not know). Default nil.
        public var headCheck: (@Sendable (HTTPRequest) -> HTTPResponse?)?
        /// Runs on each connection's thread before it reads: a handler starts on that thread
        /// and runs there until it first suspends, so this may mark the thread as one that
        /// may block (a database call made there then needs no thread switch). Default nil.
        public var onConnectionThread: (@Sendable () -> Void)?

        public init(host: String = "127.0.0.1", port: Int = 0, limits: HTTPLimits = HTTPLimits(),
                    idleTimeout: Duration = .seconds(60), requestTimeout: Duration = .seconds(10), maximumConnections: Int = 1024) {
            self.host = host
            self.port = port
            self.limits = limits
            self.idleTimeout = idleTimeout
            self.requestTimeout = requestTimeout
            self.maximumConnections = maximumConnections
        }
    }

    /// Answers one request. Runs as a task; a thrown `HTTPError` becomes its response.
    public typealias Handler = @Sendable (HTTPRequest) async throws -> HTTPResponse

    public let configuration: Configuration
    private let handler: Handler
    private let lock = NSLock()
    private var listener: Socket?
    private var connections: [ObjectIdentifier: Socket] = [:]
    /// Connections waiting for their next request with no answer owed, and since when.
    /// Connections whose thread waits for a next request with nothing buffered, and since when.
    private var awaitingSince: [ObjectIdentifier: ContinuousClock.Instant] = [:]
    /// Connections with an answer not yet written (a handler running, or its answer going out).
    private var answerOwed: Set<ObjectIdentifier> = []
    private var running = false
    /// How long a shutting-down server waits for a request a client may already have sent.
    private var grace: Duration = .seconds(1)
    /// Set once the shutdown's grace has passed and its idle connections were closed.
    private var idleSwept = false
    /// Connections this server shut down as idle during its shutdown: a request read from one
    /// afterwards (sent just as it was closed) is not handled, since its answer cannot go out.
    private var closedIdle: Set<ObjectIdentifier> = []

    public init(_ configuration: Configuration, handler: @escaping Handler) {
        self.configuration = configuration
        self.handler = handler
    }

    /// Binds and starts accepting. Throws when the address cannot be bound.
    public func start() throws {
        let socket = try Socket.listen(host: configuration.host, port: configuration.port)
        lock.withLock {
            listener = socket
            running = true
        }
        let thread = Thread { [self] in acceptLoop(socket) }
        thread.name = "depot.http.accept"
        thread.start()
    }

    /// The bound port (useful after listening on port 0).
    public var port: Int { lock.withLock { listener?.localPort ?? 0 } }

    /// Stops gracefully, and returns once every connection is closed: stops accepting at once;
    /// answers every request it has read, or reads within `grace` (a client may have sent one
    /// just as the shutdown began), with `Connection: close`; closes connections that stay idle
    /// through `grace`; and after `timeout` cuts off whatever is left. A producer whose message
    /// was committed gets its 202; none is cut off after sending a whole request.
    /// `whenDraining` runs once new connections are refused and every answer from then on says
    /// `Connection: close`: the place to end long polls, so that their answers close their
    /// connections rather than leave them open until `timeout`.
    public func shutdown(grace: Duration = .seconds(1), timeout: Duration = .seconds(10), whenDraining: (() -> Void)? = nil) {
        let started = ContinuousClock.now
        lock.withLock {
            running = false
            self.grace = grace
            listener?.shutdown()
        }
        whenDraining?()
        Thread.sleep(forTimeInterval: Double(grace.components.seconds) + Double(grace.components.attoseconds) / 1e18)
        // Still waiting for a request after the grace, no answer owed: nothing more will come.
        // (One whose answer is still going out is closed when it has gone: see answerWritten.)
        lock.withLock {
            idleSwept = true
            for key in idleKeys { closeIdle(key) }
        }
        while lock.withLock({ !connections.isEmpty }) && ContinuousClock.now - started < timeout {
            Thread.sleep(forTimeInterval: 0.01)
        }
        stop()
    }

    /// Stops accepting and closes every connection; requests being answered are cut off.
    public func stop() {
        // Under the lock: a connection thread closes its socket only after removing it here,
        // so no descriptor is shut down after being closed and reused elsewhere.
        lock.withLock {
            running = false
            for socket in connections.values { socket.shutdown() }
            listener?.shutdown()
        }
    }

    private var isRunning: Bool { lock.withLock { running } }

    /// Connections idle now: waiting for a request, no answer owed. Call under the lock.
    private var idleKeys: [ObjectIdentifier] {
        awaitingSince.keys.filter { !answerOwed.contains($0) }
    }

    /// Records whether `socket`'s thread waits for a request with nothing buffered. It is idle
    /// (closed to make room, or at shutdown) only once no answer is owed on it either, which may
    /// come later than the wait began: the thread waits for the next request while the last
    /// answer is still being made.
    private func markAwaiting(_ socket: Socket, _ awaiting: Bool) {
        let key = ObjectIdentifier(socket)
        lock.withLock {
            guard connections[key] != nil else { return }
            if awaiting { awaitingSince[key] = .now } else { awaitingSince.removeValue(forKey: key) }
        }
    }

    /// Records that an answer is owed on `socket`; false when the shutdown closed it as idle
    /// meanwhile, and the request must not be handled.
    private func answerStarted(_ socket: Socket) -> Bool {
        let key = ObjectIdentifier(socket)
        return lock.withLock {
            guard !closedIdle.contains(key) else { return false }
            answerOwed.insert(key)
            return true
        }
    }

    /// The answer on `socket` has gone. After the shutdown's sweep a connection now idle is
    /// closed here, since the sweep may have passed it while its answer was still owed. Not
    /// before the sweep: an answer that began before the shutdown said keep-alive, and its
    /// client may send its next request at once, which the grace is there to answer (closing
    /// then stored that request's message and cut off its 202).
    private func answerWritten(_ socket: Socket) {
        let key = ObjectIdentifier(socket)
        lock.withLock {
            answerOwed.remove(key)
            if idleSwept, awaitingSince[key] != nil { closeIdle(key) }
        }
    }

    /// Shuts down an idle connection during the shutdown, remembering it so that a request read
    /// from it afterwards is not handled (`answerStarted`). Call under the lock.
    private func closeIdle(_ key: ObjectIdentifier) {
        closedIdle.insert(key)
        connections[key]?.shutdown()
    }

    private func acceptLoop(_ listener: Socket) {
        while isRunning {
            guard let socket = listener.accept(timeout: .milliseconds(250)) else { continue }
            let admitted: Bool = lock.withLock {
                guard running else { return false }
                if connections.count >= configuration.maximumConnections {
                    // Idle connections must not lock callers out: the one idle longest makes room.
                    guard let oldest = idleKeys.min(by: { awaitingSince[$0]! < awaitingSince[$1]! }) else { return false }
                    awaitingSince.removeValue(forKey: oldest)
                    connections.removeValue(forKey: oldest)?.shutdown()
                }
                connections[ObjectIdentifier(socket)] = socket
                return true
            }
            guard admitted else {
                try? respond(HTTPWire(socket: socket), HTTPError(503, "too many connections; retry shortly").response,
                             keepAlive: false, deadline: .now + .seconds(1))
                socket.close()
                continue
            }
            let thread = Thread { [self] in
                configuration.onConnectionThread?()
                serve(socket)
                lock.withLock {
                    connections.removeValue(forKey: ObjectIdentifier(socket))
                    awaitingSince.removeValue(forKey: ObjectIdentifier(socket))
                    answerOwed.remove(ObjectIdentifier(socket))
                    closedIdle.remove(ObjectIdentifier(socket))
                    socket.close()
                }
            }
            thread.name = "depot.http.connection"
            thread.start()
        }
        lock.withLock { listener.close() }
    }

    /// Answers requests on one connection until either side closes it or it idles out.
    /// While a handler runs, this thread already waits for the next request; the answers still
    /// leave in order, as each request waits for the one before it to be answered.
    private func serve(_ socket: Socket) {
        let wire = HTTPWire(socket: socket)
        // A connection that has sent nothing yet gets the request timeout, not the idle one:
        // sockets opened and left silent must not hold the server's connections for a minute.
        socket.setReceiveTimeout(configuration.requestTimeout)
        var served = 0
        var previous: HTTPResponder?
        // The socket is closed after this returns: no answer may still be writing to it then.
        defer { _ = previous?.finish() }
        while true {
            if !isRunning {
                // Shutting down: an answer that said close ends the connection; after one that
                // kept it alive, a request the client sent at once is still read and answered.
                if let last = previous {
                    previous = nil
                    guard last.finishKeepingAlive() else { return }
                }
                guard wire.hasBufferedBytes || socket.isReadable(within: lock.withLock({ grace })) else { return }
            }
            if served == 1 { socket.setReceiveTimeout(configuration.idleTimeout) }
            let awaiting = !wire.hasBufferedBytes
            if awaiting { markAwaiting(socket, true) }
            let arrived = wire.awaitInput()
            if awaiting { markAwaiting(socket, false) }
            if !arrived {
                // Idle only counts once the last answer has gone.
                guard let last = previous else { return }
                previous = nil
                if last.finish() { continue } else { return }
            }
            let deadline = ContinuousClock.now + configuration.requestTimeout
            let request: HTTPRequest
            let keepAlive: Bool
            do {
                guard let head = try wire.readHead(limits: configuration.limits, deadline: deadline, requireUTF8: true) else { return }
                if let last = previous {
                    previous = nil
                    guard last.finish() else { return }
                }
                try Self.checkRequestLine(head)
                served += 1
                if let refusal = configuration.headCheck?(HTTPRequest(method: head.startLine[0], target: head.startLine[1], headers: head.headers)) {
                    try? respond(wire, refusal, keepAlive: false, deadline: .now + .seconds(1))
                    // Drops (never keeps) what the peer still sends, so the answer is not lost to a reset.
                    socket.lingeringClose(deadline: .now + .seconds(2))
                    return
                }
                if head.headers["Expect"]?.lowercased() == "100-continue" {
                    try socket.write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8), deadline: deadline)
                }
                let body = try wire.readBody(of: head, limits: configuration.limits, deadline: deadline, untilClose: false)
                request = HTTPRequest(method: head.startLine[0], target: head.startLine[1], headers: head.headers, body: body)
                keepAlive = head.keepsAlive
            } catch let error as HTTPError {
                guard previous?.finish() ?? true else { return }
                try? respond(wire, error.response, keepAlive: false, deadline: .now + .seconds(1))
                socket.lingeringClose(deadline: .now + .seconds(2))
                return
            } catch HTTPTransportError.timeout {
                guard previous?.finish() ?? true else { return }
                try? respond(wire, HTTPError(408, "the request did not arrive within \(configuration.requestTimeout)").response,
                             keepAlive: false, deadline: .now + .seconds(1))
                return
            } catch {
                return
            }
            guard answerStarted(socket) else { return }
            previous = HTTPResponder(request, on: socket, handler: handler, writeTimeout: configuration.requestTimeout,
                                     keepAlive: { [self] in keepAlive && isRunning }, onResponse: configuration.onResponse,
                                     onWritten: { [self] in answerWritten(socket) })
            if !keepAlive { return }  // the deferred finish waits for the answer before the socket closes
        }
    }

    private func respond(_ wire: HTTPWire, _ response: HTTPResponse, keepAlive: Bool, deadline: ContinuousClock.Instant) throws {
        configuration.onResponse?(response.status)
        try wire.write(response, keepAlive: keepAlive, deadline: deadline)
    }

    /// 505 for a version other than HTTP/1.1 and HTTP/1.0 that starts `HTTP/` (HTTP/2.0, HTTP/1.2),
    /// 400 for anything else that is not a request line.
    private static func checkRequestLine(_ head: HTTPHead) throws {
        let (method, target, version) = (head.startLine[0], head.startLine[1], head.startLine[2])
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else {
            throw HTTPError(version.hasPrefix("HTTP/") ? 505 : 400, "\"\(HTTPWire.printable(version))\" is not HTTP/1.1 or HTTP/1.0")
        }
        guard method.unicodeScalars.allSatisfy(HTTPWire.isTokenCharacter) else {
            throw HTTPError(400, "\"\(HTTPWire.printable(method))\" is not a method")
        }
        guard target.hasPrefix("/"), !target.utf8.contains(32) else {
            throw HTTPError(400, "request target \"\(HTTPWire.printable(target))\" must be a path starting with /")
        }
    }
}
