import DepotHTTP
import Foundation

/// An HTTP back end on loopback for tests: answers every request with `respond` and keeps each
/// request it answered, in arrival order.
public final class RecordingBackEnd: Sendable {
    private final class Requests: @unchecked Sendable {
        let lock = NSLock()
        var all: [HTTPRequest] = []
    }

    private let server: HTTPServer
    private let requests: Requests

    /// Starts listening on a free port. Default answer: 200.
    public init(_ respond: @escaping @Sendable (HTTPRequest) -> HTTPResponse = { _ in HTTPResponse(status: 200) }) throws {
        let requests = Requests()
        server = HTTPServer(.init()) { request in
            requests.lock.withLock { requests.all.append(request) }
            return respond(request)
        }
        self.requests = requests
        try server.start()
    }

    /// `http://127.0.0.1:PORT/in`, for an endpoint row.
    public var url: String { "http://127.0.0.1:\(server.port)/in" }
    public var port: Int { server.port }

    /// Every request answered so far.
    public var received: [HTTPRequest] { requests.lock.withLock { requests.all } }

    public func stop() { server.stop() }
}
