import Foundation

/// Answers one request from a task and writes the answer from that task, so the connection's
/// thread neither waits for the handler nor wakes up to write: it goes back to reading once the
/// handler first suspends and only meets the responder again before the next request (when it is
/// long done). The task starts on the connection's thread (`Task.immediate`): a handler that
/// answers without suspending (the echo back end, health checks, refusals) answers from there,
/// with no hop to Swift's pool and back. Nor does one whose database calls block the thread they
/// run on (the ingress marks its connections' threads so, `onConnectionThread`): a message is
/// stored and answered from the connection's thread, which reads the next request afterwards.
///
/// What the socket does not take at once (a large body, a slow reader) goes to a thread of its
/// own: the task never blocks Swift's cooperative pool.
final class HTTPResponder: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    /// False when the answer could not be encoded or written: the connection must close.
    private var written = false
    /// Whether the answer told the client it may send another request on this connection.
    private var keptAlive = false
    /// Told once the answer has been written or has failed.
    private let onWritten: (@Sendable () -> Void)?

    /// Starts `handler` on `request`; `keepAlive()` decides (when the answer is ready) whether to
    /// keep the connection open; `onResponse` is told the status.
    init(_ request: HTTPRequest, on socket: Socket, handler: @escaping HTTPServer.Handler, writeTimeout: Duration,
         keepAlive: @escaping @Sendable () -> Bool, onResponse: (@Sendable (Int) -> Void)?, onWritten: (@Sendable () -> Void)? = nil) {
        self.onWritten = onWritten
        Task.immediate { [self] in
            let response: HTTPResponse
            do {
                response = try await handler(request)
            } catch let error as HTTPError {
                response = error.response
            } catch {
                response = HTTPError(500, "\(error)").response
            }
            onResponse?(response.status)
            write(response, keepAlive: keepAlive(), on: socket, writeTimeout: writeTimeout)
        }
    }

    /// Waits until the answer is written; false when the connection must close.
    func finish() -> Bool {
        done.wait()
        done.signal()  // later calls return at once
        return written
    }

    /// Waits until the answer is written; true when it went out and kept the connection open.
    func finishKeepingAlive() -> Bool {
        finish() && keptAlive
    }

    private func write(_ response: HTTPResponse, keepAlive: Bool, on socket: Socket, writeTimeout: Duration) {
        keptAlive = keepAlive
        let head: [UInt8]
        do { head = try HTTPWire.encode(head: response, keepAlive: keepAlive) } catch { return complete(false) }
        var unsent = head
        var body = response.body
        if body.count <= 65536 {
            unsent += body
            body = Data()
        }
        do {
            unsent.removeFirst(try unsent.withUnsafeBytes { try socket.writeWithoutWaiting($0) })
            if unsent.isEmpty && !body.isEmpty {
                body.removeFirst(try body.withUnsafeBytes { try socket.writeWithoutWaiting($0) })
            }
        } catch {
            return complete(false)
        }
        if unsent.isEmpty && body.isEmpty { return complete(true) }
        let rest = (unsent, body)
        let thread = Thread { [self] in
            do {
                let deadline = ContinuousClock.now + writeTimeout
                if !rest.0.isEmpty { try socket.write(rest.0, deadline: deadline) }
                if !rest.1.isEmpty { try socket.write(rest.1, deadline: deadline) }
                complete(true)
            } catch {
                socket.shutdown()  // wakes the connection's thread if it waits for input
                complete(false)
            }
        }
        thread.name = "depot.http.write"
        thread.start()
    }

    private func complete(_ success: Bool) {
        written = success
        onWritten?()
        done.signal()
    }
}
