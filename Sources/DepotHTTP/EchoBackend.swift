import Foundation

/// A back end for tests and demos: answers every request by echoing its body, counts requests by
/// their `Depot-Message-Id`, and fails or slows down on request.
///
/// `GET /_echo/counts` reports what it saw; `POST /_echo/config` (JSON with any of `status`,
/// `fail_first`, `fail_rate`, `fail_status`, `delay_ms`) changes its behaviour while it runs;
/// `POST /_echo/reset` forgets the counts.
public final class EchoBackend: @unchecked Sendable {
    /// How the back end answers.
    public struct Behaviour: Sendable, Codable, Equatable {
        /// Status for a request that does not fail. Default 200.
        public var status: Int = 200
        /// Fail the first N attempts of every message id. Default 0.
        public var failFirst: Int = 0
        /// Fail this fraction (0...1) of requests at random. Default 0.
        public var failRate: Double = 0
        /// Status of a failed request. Default 503.
        public var failStatus: Int = 503
        /// Wait this long before answering. Default 0.
        public var delayMilliseconds: Int = 0

        public init(status: Int = 200, failFirst: Int = 0, failRate: Double = 0, failStatus: Int = 503, delayMilliseconds: Int = 0) {
            self.status = status
            self.failFirst = failFirst
            self.failRate = failRate
            self.failStatus = failStatus
            self.delayMilliseconds = delayMilliseconds
        }

        enum CodingKeys: String, CodingKey {
            case status, failFirst = "fail_first", failRate = "fail_rate", failStatus = "fail_status", delayMilliseconds = "delay_ms"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.init()
            status = try container.decodeIfPresent(Int.self, forKey: .status) ?? status
            failFirst = try container.decodeIfPresent(Int.self, forKey: .failFirst) ?? failFirst
            failRate = try container.decodeIfPresent(Double.self, forKey: .failRate) ?? failRate
            failStatus = try container.decodeIfPresent(Int.self, forKey: .failStatus) ?? failStatus
            delayMilliseconds = try container.decodeIfPresent(Int.self, forKey: .delayMilliseconds) ?? delayMilliseconds
        }

        /// Nil when sensible, else what is wrong.
        public var problem: String? {
            if !(100...599).contains(status) { return "status \(status) is not between 100 and 599" }
            if !(100...599).contains(failStatus) { return "fail_status \(failStatus) is not between 100 and 599" }
            if failFirst < 0 { return "fail_first \(failFirst) is negative" }
            if !(0...1).contains(failRate) { return "fail_rate \(failRate) is not between 0 and 1" }
            if delayMilliseconds < 0 { return "delay_ms \(delayMilliseconds) is negative" }
            return nil
        }
    }

    /// What the back end has seen.
    public struct Counts: Sendable, Codable, Equatable {
        /// Every request to a path other than /_echo/…
        public var requests = 0
        /// Requests answered with a non-failing status.
        public var succeeded = 0
        /// Distinct `Depot-Message-Id` values seen.
        public var distinct = 0
        /// Requests per `Depot-Message-Id`.
        public var byMessage: [String: Int] = [:]
        /// Most requests being answered at the same moment.
        public var maximumConcurrent = 0

        enum CodingKeys: String, CodingKey {
            case requests, succeeded, distinct, byMessage = "by_message", maximumConcurrent = "maximum_concurrent"
        }
    }

    private let lock = NSLock()
    private var behaviour: Behaviour
    private var counts = Counts()
    private var concurrent = 0
    private var arrivals: [ContinuousClock.Instant] = []
    private var server: HTTPServer?

    public init(behaviour: Behaviour = Behaviour()) {
        self.behaviour = behaviour
    }

    /// Starts listening; returns the port (useful with port 0).
    @discardableResult
    public func start(host: String = "127.0.0.1", port: Int = 0) throws -> Int {
        let server = HTTPServer(HTTPServer.Configuration(host: host, port: port, limits: HTTPLimits(bodyBytes: 256 * 1024 * 1024))) { [self] in
            try await handle($0)
        }
        try server.start()
        lock.withLock { self.server = server }
        return server.port
    }

    public func stop() { lock.withLock { server }?.stop() }

    public var port: Int { lock.withLock { server }?.port ?? 0 }

    /// What it has seen so far.
    public func snapshot() -> Counts { lock.withLock { counts } }

    /// Changes how it answers from now on.
    public func update(_ newBehaviour: Behaviour) { lock.withLock { behaviour = newBehaviour } }

    /// When each request (other than /_echo/…) arrived, in order.
    public func arrivalTimes() -> [ContinuousClock.Instant] { lock.withLock { arrivals } }

    public func reset() {
        lock.withLock {
            counts = Counts()
            arrivals = []
        }
    }

    func handle(_ request: HTTPRequest) async throws -> HTTPResponse {
        switch (request.method, request.path) {
        case ("GET", "/_echo/counts"):
            return .json(200, snapshot())
        case ("POST", "/_echo/config"):
            guard let next = try? JSONDecoder().decode(Behaviour.self, from: request.body) else {
                throw HTTPError(400, "send a JSON object with any of status, fail_first, fail_rate, fail_status, delay_ms")
            }
            if let problem = next.problem { throw HTTPError(400, problem) }
            update(next)
            return .json(200, next)
        case ("POST", "/_echo/reset"):
            reset()
            return .json(200, ["reset": true])
        default:
            return try await echo(request)
        }
    }

    private func echo(_ request: HTTPRequest) async throws -> HTTPResponse {
        let messageID = request.headers["Depot-Message-Id"]
        let (current, attempt): (Behaviour, Int) = lock.withLock {
            counts.requests += 1
            arrivals.append(.now)
            concurrent += 1
            counts.maximumConcurrent = max(counts.maximumConcurrent, concurrent)
            guard let messageID else { return (behaviour, 1) }
            let seen = counts.byMessage[messageID, default: 0] + 1
            counts.byMessage[messageID] = seen
            if seen == 1 { counts.distinct += 1 }
            return (behaviour, seen)
        }
        if current.delayMilliseconds > 0 { try? await Task.sleep(for: .milliseconds(current.delayMilliseconds)) }
        let fails = attempt <= current.failFirst || (current.failRate > 0 && Double.random(in: 0..<1) < current.failRate)
        lock.withLock {
            concurrent -= 1
            if !fails { counts.succeeded += 1 }
        }
        if fails { return .text(current.failStatus, "failing on purpose (attempt \(attempt))\n") }
        var headers: HTTPHeaders = ["Content-Type": request.headers["Content-Type"] ?? "application/octet-stream"]
        if let messageID { headers.add("Depot-Message-Id", messageID) }
        return HTTPResponse(status: current.status, headers: headers, body: request.body)
    }
}
