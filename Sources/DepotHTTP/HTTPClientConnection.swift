import Foundation

/// One pooled client connection and the long-lived thread that runs its exchanges.
///
/// Blocking socket calls stay off Swift's cooperative pool, as with a thread per exchange, but
/// the thread is started once per connection rather than once per request: starting a thread
/// cost more than the exchange itself. The socket may be absent (not yet connected, or closed
/// by the server); the thread then connects on its next job.
final class HTTPClientConnection: @unchecked Sendable {
    /// `host:port`, the pool this connection belongs to.
    let key: String
    /// The connection, touched only by this connection's thread.
    var wire: HTTPWire?
    private let condition = NSCondition()
    private var job: (@Sendable () -> Void)?
    private var closing = false

    init(key: String) {
        self.key = key
        let thread = Thread { [self] in run() }
        thread.name = "depot.http.client"
        thread.start()
    }

    /// Runs `job` on this connection's thread. One job at a time: the pool hands a connection
    /// to one caller only, and takes it back when the job is done.
    func submit(_ job: @escaping @Sendable () -> Void) {
        condition.withLock {
            precondition(self.job == nil, "a client connection runs one exchange at a time")
            self.job = job
            condition.signal()
        }
    }

    /// Ends the thread (after the job it runs, if any) and closes the socket.
    func close() {
        condition.withLock {
            closing = true
            condition.signal()
        }
    }

    /// Closes the socket only; the thread stays for the next job, which connects afresh.
    func dropSocket() {
        wire?.socket.close()
        wire = nil
    }

    private func run() {
        while true {
            let next: (@Sendable () -> Void)? = condition.withLock {
                while job == nil && !closing { condition.wait() }
                defer { job = nil }
                return job
            }
            guard let next else { break }
            next()
        }
        dropSocket()
    }
}
