import DepotHTTP
import Foundation
import Postgres

/// The node's HTTP face for producers and operators:
///
/// - `POST /stores/{store}/messages` → 202 `{"id": …, "created": …}` (see `IngressMessages` for the request headers);
/// - `POST /stores/{store}/messages/batch` → 202 `{"ids": […]}`, all stored in one round trip;
/// - `POST /stores/{store}/claims`, `/acks`, `/releases`, `/leases` → 200, the consumer API
///   (see `ConsumerRoutes.swift`): leases with a long poll on the store's notifications;
/// - `GET /healthz` → 200 when the database answers, 503 with the reason when not;
/// - `GET /metrics` → Prometheus text;
/// - `GET /` or `GET /status` → the live status page (see `StatusPage`), its data at `GET /status.json`.
///
/// A message held in a failover store (guaranteed delivery while the database is down) still
/// gets 202, with `Depot-Held-In: FAILOVER_STORE`. Errors are JSON `{"error": …}`.
public struct IngressService: Sendable {
    /// Who may call and how the node names itself.
    public struct Configuration: Sendable {
        /// The node's name, in health answers and metrics labels.
        public var node: String
        /// The tokens it accepts. When there is any, every route but `/healthz` needs
        /// `Authorization: Bearer TOKEN` (or HTTP Basic with the token as password, which is what a
        /// browser can send), and a scoped token may only POST into its stores.
        /// Default none: open to anyone who can reach it.
        public var tokens: IngressTokens

        /// The full token (every store, and `/metrics`); nil for none.
        public var token: String? {
            get { tokens.full }
            set { tokens.full = newValue }
        }

        /// - Parameters:
        ///   - token: the full token (`DEPOT_HTTP_TOKEN`); default nil.
        ///   - scopedTokens: tokens limited to named stores (`--http-tokens FILE`); default none.
        public init(node: String, token: String? = nil, scopedTokens: [IngressTokens.Scoped] = []) {
            self.node = node
            self.tokens = IngressTokens(full: token, scoped: scopedTokens)
        }
    }

    let configuration: Configuration
    let producer: Producer
    let pool: ConnectionPool
    let metrics: NodeMetrics
    let health: HealthCheck
    let arrivals: StoreArrivals
    let statusPage: StatusPage

    /// - Parameter arrivals: wakes claims waiting for messages; pass the node's (`Node.arrivals`),
    ///   which its LISTEN feeds. Default a new one that nothing announces: waiting claims then
    ///   look again only every `ConsumerRoutes.recheckInterval`.
    public init(_ configuration: Configuration, producer: Producer, pool: ConnectionPool, metrics: NodeMetrics,
                arrivals: StoreArrivals = StoreArrivals()) {
        self.configuration = configuration
        self.producer = producer
        self.pool = pool
        self.metrics = metrics
        self.arrivals = arrivals
        health = HealthCheck(pool: pool)
        statusPage = StatusPage(node: configuration.node, pool: pool, health: health)
    }

    /// An HTTP server answering with this service, counting its responses in `metrics`.
    public func server(host: String, port: Int, limits: HTTPLimits = HTTPLimits()) -> HTTPServer {
        var serverConfiguration = HTTPServer.Configuration(host: host, port: port, limits: limits)
        let metrics = self.metrics
        serverConfiguration.onResponse = { metrics.recordHTTPResponse(status: $0) }
        serverConfiguration.headCheck = { request in self.refusalBeforeBody(request) }
        serverConfiguration.onConnectionThread = { BlockingThread.allowOnCurrentThread() }
        return HTTPServer(serverConfiguration) { request in await self.answer(request) }
    }

    /// Answers one request; errors become JSON responses, with `WWW-Authenticate` on 401.
    public func answer(_ request: HTTPRequest) async -> HTTPResponse {
        do {
            return try await route(request)
        } catch let error as HTTPError {
            var response = error.response
            if error.status == 401 { response.headers.set("WWW-Authenticate", Self.challenge(for: request.path)) }
            if error.status == 503 { response.headers.set("Retry-After", "1") }
            return response
        } catch {
            return HTTPError(500, "\(error)").response
        }
    }

    private func route(_ request: HTTPRequest) async throws -> HTTPResponse {
        let path = request.path
        // The producers' route, once per message: matched without splitting the path.
        if let store = Self.singleMessageStore(in: path) {
            let access = try authorize(request)
            try allow(["POST"], request)
            return try await storeOne(request, in: try permitted(access, store: try storeName(store)))
        }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        switch segments {
        case ["healthz"]:
            try allow(["GET"], request)
            return await healthz()
        case ["metrics"]:
            try everythingOnly(try authorize(request), path)
            try allow(["GET"], request)
            return await metricsText()
        case _ where StatusPage.paths.contains(path):
            try everythingOnly(try authorize(request), path)
            try allow(["GET"], request)
            return await statusPage.answer(path)
        case let route where route.count == 3 && route[0] == "stores" && route[2] == "messages":
            let access = try authorize(request)
            try allow(["POST"], request)
            return try await storeOne(request, in: try permitted(access, store: try storeName(route[1])))
        case let route where route.count == 4 && route[0] == "stores" && route[2] == "messages" && route[3] == "batch":
            let access = try authorize(request)
            try allow(["POST"], request)
            return try await storeBatch(request, in: try permitted(access, store: try storeName(route[1])))
        case let route where route.count == 3 && route[0] == "stores" && Self.consumerRoutes.contains(route[2]):
            try producerOnly(try authorize(request))
            try allow(["POST"], request)
            return try await consume(request, route: route[2], in: try storeName(route[1]))
        default:
            throw HTTPError(404, "no route \(request.method) \(request.path); routes: POST /stores/{store}/messages, "
                + "POST /stores/{store}/messages/batch, POST /stores/{store}/claims, POST /stores/{store}/acks, "
                + "POST /stores/{store}/releases, POST /stores/{store}/leases, GET /healthz, GET /metrics, "
                + "GET / (the status page), GET /status.json")
        }
    }

    // MARK: - Routes

    private struct AcceptedBatch: Encodable {
        let ids: [String]
        let created: Int
        let held_in: String?
    }

    private func storeOne(_ request: HTTPRequest, in store: String) async throws -> HTTPResponse {
        let message = try IngressMessages.message(from: request)
        // One message per request: requests arriving together share a commit (group commit).
        let result = try await produce(in: store) { try await producer.store(message, in: store) }
        let receipt = result.receipts[0]
        return accepted(Self.acceptedOne(id: receipt.id.uuidString.lowercased(), created: receipt.created, heldIn: result.heldIn),
                        heldIn: result.heldIn)
    }

    private func storeBatch(_ request: HTTPRequest, in store: String) async throws -> HTTPResponse {
        let messages = try IngressMessages.batch(from: request)
        let result = try await produce(in: store) { try await producer.store(messages, in: store) }
        return accepted(.json(202, AcceptedBatch(ids: result.receipts.map { $0.id.uuidString.lowercased() },
                                                 created: result.receipts.filter(\.created).count, held_in: result.heldIn)),
                        heldIn: result.heldIn)
    }

    private func accepted(_ response: HTTPResponse, heldIn: String?) -> HTTPResponse {
        var response = response
        if let heldIn { response.headers.set("Depot-Held-In", heldIn) }
        return response
    }

    /// Runs a producer call and turns its errors into statuses.
    private func produce(in store: String, _ call: () async throws -> ProducerReceipt) async throws -> ProducerReceipt {
        do {
            return try await call()
        } catch let error as StoreError {
            throw HTTPError(error.code == .undeclaredStore ? 404 : error.code == .notAllowed ? 403 : 400, error.description)
        } catch where Producer.isUnavailability(error) {
            throw HTTPError(503, "store \"\(store)\" cannot take messages now (\(error)) and has no guaranteed delivery; "
                + "retry later, or set guaranteed_delivery and a failover_store on its depot.stores row")
        } catch let error as PostgresError where error.kind == .server && error.sqlState?.errorClass == SQLState.dataExceptionClass {
            throw HTTPError(400, "the database refused the message: \(error.message)")
        }
    }

    private func healthz() async -> HTTPResponse {
        if let problem = await health.problem() {
            return .json(503, ["status": "unavailable", "node": configuration.node, "reason": problem])
        }
        return .json(200, ["status": "ok", "node": configuration.node])
    }

    private func metricsText() async -> HTTPResponse {
        let problem = await health.problem()
        var stores: [StoreStatistics]?
        if problem == nil {
            let catalog = StoreCatalog(pool: pool)
            stores = try? await withDeadline(.seconds(5)) { try await catalog.statistics() }
        }
        let text = metrics.render(node: configuration.node, stores: stores, databaseUp: problem == nil, waitingClaims: arrivals.waitingCount)
        return HTTPResponse(status: 200, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"], body: Data(text.utf8))
    }

    // MARK: - Checks

    /// The `{store}` of `/stores/{store}/messages`, or nil for any other path.
    static func singleMessageStore(in path: String) -> String? {
        let prefix = "/stores/", suffix = "/messages"
        let bytes = path.utf8
        guard bytes.count > prefix.utf8.count + suffix.utf8.count,
              bytes.starts(with: prefix.utf8), bytes.reversed().starts(with: suffix.utf8.reversed()) else { return nil }
        let store = bytes.dropFirst(prefix.utf8.count).dropLast(suffix.utf8.count)
        guard !store.contains(UInt8(ascii: "/")) else { return nil }
        return String(Substring(store))
    }

    private func storeName(_ segment: String) throws -> String {
        // Most names hold no %: no decoding for them (a cost per request).
        let name = segment.utf8.contains(UInt8(ascii: "%")) ? Self.percentDecoded(segment) : segment
        guard let name, !name.isEmpty else {
            throw HTTPError(400, "store name \"\(NameCharacters.shown(segment))\" in the path is empty, badly percent-encoded or not UTF-8")
        }
        if let problem = NameCharacters.problem(in: name) {
            throw HTTPError(400, "store name \"\(NameCharacters.shown(name))\" \(problem)")
        }
        return name
    }

    /// `text` with its %XX escapes decoded, as UTF-8 checked strictly; nil for a bad escape or bad
    /// UTF-8. Foundation's `removingPercentEncoding` dropped a leading byte order mark.
    static func percentDecoded(_ text: String) -> String? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 48...57: byte - 48
        case 65...70: byte - 55
        case 97...102: byte - 87
        default: nil
        }
    }

    private func allow(_ methods: [String], _ request: HTTPRequest) throws {
        guard methods.contains(request.method) else {
            throw HTTPError(405, "\(request.path) takes \(methods.joined(separator: " or ")), not \(request.method)")
        }
    }

    /// The 401 for a request whose head already shows it may not pass (every path but `/healthz`
    /// needs a token), the 403 for a scoped token sent to a store it may not write to, to
    /// `/metrics` or to the status page, and the 405 or 400 for a status page request that is not
    /// a GET or comes with a body, so that the server answers without reading the body; nil otherwise.
    func refusalBeforeBody(_ request: HTTPRequest) -> HTTPResponse? {
        let statusPage = StatusPage.paths.contains(request.path)
        guard statusPage || (configuration.tokens.required && request.path != "/healthz") else { return nil }
        do {
            let access = try authorize(request)
            if statusPage {
                try everythingOnly(access, request.path)
                try StatusPage.checkHead(request)
                return nil
            }
            guard case .stores = access else { return nil }
            let segments = request.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
            if request.path == "/metrics" { try everythingOnly(access, request.path) }
            if segments.count == 3, segments[0] == "stores", Self.consumerRoutes.contains(segments[2]) { try producerOnly(access) }
            // A store route whose name does not decode is answered (400) once routed.
            guard let segment = Self.singleMessageStore(in: request.path)
                    ?? (segments.count >= 3 && segments[0] == "stores" ? segments[1] : nil),
                  let store = try? storeName(segment) else { return nil }
            _ = try permitted(access, store: store)
            return nil
        } catch let error as HTTPError {
            var response = error.response
            if error.status == 401 { response.headers.set("WWW-Authenticate", Self.challenge(for: request.path)) }
            return response
        } catch {
            return nil
        }
    }

    /// What the request's token lets it do; throws 401 when tokens are required and it has
    /// none or a wrong one. The token comes as `Bearer TOKEN`, or as the password of HTTP Basic
    /// (any user name): a browser cannot add a bearer header to a page it opens, but asks for Basic.
    private func authorize(_ request: HTTPRequest) throws -> IngressTokens.Access {
        let tokens = configuration.tokens
        guard tokens.required else { return .everything }
        guard let given = request.headers["Authorization"] else {
            throw HTTPError(401, "this node needs Authorization: Bearer TOKEN (the node's DEPOT_HTTP_TOKEN, or a token of --http-tokens); "
                + "a browser asks for it: any user name, the token as password")
        }
        guard let token = IngressTokens.presented(in: given), let access = tokens.access(for: token) else {
            throw HTTPError(401, "the bearer token is wrong; send Authorization: Bearer TOKEN with the node's DEPOT_HTTP_TOKEN "
                + "or a token of its --http-tokens file (or, from a browser, Basic with the token as password)")
        }
        return access
    }

    /// The 401's `WWW-Authenticate`: Basic on the status page's paths, so that a browser asks
    /// for the token; Bearer elsewhere.
    static func challenge(for path: String) -> String {
        StatusPage.paths.contains(path) ? #"Basic realm="Depot status", charset="UTF-8""# : "Bearer"
    }

    /// Throws 403 unless `access` is the full token's: `/metrics` and the status page name every
    /// store, which a token limited to some stores may not learn.
    private func everythingOnly(_ access: IngressTokens.Access, _ path: String) throws {
        guard access != .everything else { return }
        throw HTTPError(403, "a token limited to named stores may not read \(path); use the node's DEPOT_HTTP_TOKEN")
    }

    /// `store` when `access` may write to it; a 403 naming the store and the token's stores otherwise.
    /// A token limited to named stores may produce into them, not consume: claiming reads every
    /// message of a store, what other producers stored included. Throws 403 for such a token.
    private func producerOnly(_ access: IngressTokens.Access) throws {
        guard case .stores = access else { return }
        throw HTTPError(403, "a token limited to named stores may only store messages; claims, acks, releases and leases need the node's DEPOT_HTTP_TOKEN")
    }

    private func permitted(_ access: IngressTokens.Access, store: String) throws -> String {
        guard case .stores(let allowed) = access, !allowed.contains(store) else { return store }
        let names = allowed.sorted().map { "\"\(NameCharacters.shown($0))\"" }.joined(separator: ", ")
        throw HTTPError(403, "this token may not store into store \"\(NameCharacters.shown(store))\"; it may store into \(names)")
    }
}
