import DepotHTTP
import Foundation
import Postgres

/// The consumer API over HTTP, for applications in any language: the SQL API's claim, ack,
/// release and lease extension (migration 0015) on a postgres store, each lease-guarded by the
/// consumer's name, with a long poll on the store's notifications.
///
/// - `POST /stores/{store}/claims` `{"consumer", "limit", "lease_ms", "wait_ms"}` → 200
///   `{"messages": […]}` in delivery order (see `ClaimedJSON`); with `wait_ms` and nothing to
///   claim, waits for the node's LISTEN to announce the store (or the wait to end: then `[]`);
/// - `POST /stores/{store}/acks` `{"consumer", "ids"}` → 200 `{"acked": […], "not_held": […]}`;
/// - `POST /stores/{store}/releases` `{"consumer", "id" or "ids", "retry_in_ms", "error"}` → 200
///   `{"released": […], "not_held": […]}`;
/// - `POST /stores/{store}/leases` `{"consumer", "ids", "lease_ms"}` → 200
///   `{"extended": [{"id", "lease_expires_at"}], "not_held": […]}`.
///
/// `not_held` lists the ids the consumer does not hold (its lease ran out and another took the
/// message, it was acked already, or it never existed): nothing was done to them.
extension IngressService {
    static let consumerRoutes: Set<String> = ["claims", "acks", "releases", "leases"]
    /// How often a waiting claim looks again without an announcement: messages whose delay,
    /// retry or lease ends make no notification. Default 1 s.
    static let recheckInterval = Duration.seconds(1)
    /// Payload bytes past which a claim's answer keeps no more messages (at least one): the rest
    /// are given back untried, their attempt not counted. 16 MiB, which base64 keeps under the
    /// 64 MiB answer `HTTPClient` reads.
    static let maximumAnswerPayloadBytes = 16 << 20

    func consume(_ request: HTTPRequest, route: String, in store: String) async throws -> HTTPResponse {
        try IngressMessages.checkSingleValues(request.headers)
        switch route {
        case "claims":
            let claim = try ConsumerRequests.claim(from: request.body)
            let leases = try await consumerLeases(of: store)
            let claimed = try await consuming(store) { try await self.claim(claim, from: leases) }
            return .json(200, ["messages": claimed.map(ClaimedJSON.init)])
        case "acks":
            let ack = try ConsumerRequests.ack(from: request.body)
            let leases = try await consumerLeases(of: store)
            let acked = try await consuming(store) { try await leases.ack(ack.ids, consumer: ack.consumer) }
            return .json(200, ["acked": Self.idTexts(acked, of: ack.ids), "not_held": Self.idTexts(notIn: acked, of: ack.ids)])
        case "releases":
            let release = try ConsumerRequests.release(from: request.body)
            let leases = try await consumerLeases(of: store)
            let released = try await consuming(store) {
                try await leases.release(release.ids, consumer: release.consumer, retryIn: release.retryIn, error: release.error)
            }
            return .json(200, ["released": Self.idTexts(released, of: release.ids), "not_held": Self.idTexts(notIn: released, of: release.ids)])
        default:
            let extend = try ConsumerRequests.extend(from: request.body)
            let leases = try await consumerLeases(of: store)
            let extended = try await consuming(store) { try await leases.extend(extend.ids, consumer: extend.consumer, lease: extend.lease) }
            let expiries = Dictionary(extended.map { ($0.id, $0.leaseExpiresAt) }, uniquingKeysWith: { first, _ in first })
            return .json(200, ExtendedJSON(
                extended: Self.ordered(expiries.keys, of: extend.ids).map { .init(id: $0.uuidString.lowercased(), lease_expires_at: ClaimedJSON.time(expiries[$0]!)) },
                not_held: Self.idTexts(notIn: extended.map(\.id), of: extend.ids)))
        }
    }

    // MARK: - Claims

    /// Claims now; with a wait and nothing claimed, waits for the store's announcements and
    /// claims again until something comes or the wait ends.
    private func claim(_ claim: ConsumerRequests.Claim, from leases: ConsumerLeases) async throws -> [LeasedMessage] {
        let deadline = ContinuousClock.now + claim.wait
        // The first claim goes without asking about unannounced writes (see IdleLook).
        var idle = IdleLook(looks: true)
        // Read before each claim: an announcement after it makes the next wait return at once.
        var generation = arrivals.generation(of: leases.store)
        var claimed = try await leases.claim(limit: claim.limit, consumer: claim.consumer, lease: claim.lease)
        guard claimed.isEmpty, claim.wait > .zero, !arrivals.isClosed else { return try await capped(claimed, leases, claim.consumer) }
        // A place among the waiting claims is taken just before the first wait, and kept until the answer.
        var admitted = false
        defer { if admitted { arrivals.dismiss() } }
        var unannounced = false
        while claimed.isEmpty {
            let remaining = deadline - .now
            guard remaining > .zero, !arrivals.isClosed else { break }
            if let pause = idle.next(claimed: 0, unannounced: unannounced, poll: Self.recheckInterval) {
                if !admitted {
                    guard arrivals.admit() else {
                        throw HTTPError(503, "this node already holds \(arrivals.maximumWaiting) waiting claims; retry shortly, "
                            + "spread consumers over more nodes, or claim without wait_ms")
                    }
                    admitted = true
                }
                await arrivals.wait(for: leases.store, after: generation, timeout: min(pause, remaining))
            }
            generation = arrivals.generation(of: leases.store)
            unannounced = idle.looksFirst ? try await leases.hasUnannouncedWrites() : false
            claimed = try await leases.claim(limit: claim.limit, consumer: claim.consumer, lease: claim.lease)
        }
        return try await capped(claimed, leases, claim.consumer)
    }

    /// `claimed` up to `maximumAnswerPayloadBytes` of payload (at least one message); the rest
    /// go back to the store untried.
    private func capped(_ claimed: [LeasedMessage], _ leases: ConsumerLeases, _ consumer: String) async throws -> [LeasedMessage] {
        var bytes = 0
        guard let cut = claimed.indices.first(where: { index in
            bytes += claimed[index].message.payload.count
            return index > 0 && bytes > Self.maximumAnswerPayloadBytes
        }) else { return claimed }
        _ = try await leases.giveBack(claimed[cut...].map(\.message.id), consumer: consumer)
        return Array(claimed[..<cut])
    }

    // MARK: - Stores and errors

    /// The store's leases; 404 for an undeclared store, 409 for one that does not live in the database.
    private func consumerLeases(of store: String) async throws -> ConsumerLeases {
        let definition = try await consuming(store) { try await self.producer.routes.definition(of: store) }
        guard definition.kind == .postgres else {
            throw HTTPError(409, "store \"\(NameCharacters.shown(store))\" is a \(definition.kind) store, which lives in one node's process; "
                + "the consumer API serves postgres stores, shared by every node (consume a \(definition.kind) store with a processor)")
        }
        return ConsumerLeases(store: store, pool: pool)
    }

    /// Runs a database call and turns its errors into statuses.
    private func consuming<T>(_ store: String, _ call: () async throws -> T) async throws -> T {
        do {
            return try await call()
        } catch let error as StoreError {
            throw HTTPError(error.code == .undeclaredStore ? 404 : 400, error.description)
        } catch let error as PostgresError where error.sqlState == SQLState("42704") {
            throw HTTPError(404, "store \"\(NameCharacters.shown(store))\" is not declared; \(error.message)")
        } catch where Producer.isUnavailability(error) {
            throw HTTPError(503, "store \"\(NameCharacters.shown(store))\" cannot be consumed now (\(error)); retry later")
        } catch let error as PostgresError where error.kind == .server && error.sqlState?.code.hasPrefix("22") == true {
            throw HTTPError(400, "the database refused the request: \(error.message)")
        }
    }

    // MARK: - Answers

    private struct ExtendedJSON: Encodable {
        struct Lease: Encodable {
            let id: String
            let lease_expires_at: String
        }
        let extended: [Lease]
        let not_held: [String]
    }

    /// The ids of `requested` found in `done`, in request order, each once.
    static func ordered(_ done: some Collection<UUID>, of requested: [UUID]) -> [UUID] {
        let found = Set(done)
        var seen = Set<UUID>()
        return requested.filter { found.contains($0) && seen.insert($0).inserted }
    }

    static func idTexts(_ done: [UUID], of requested: [UUID]) -> [String] {
        ordered(done, of: requested).map { $0.uuidString.lowercased() }
    }

    /// The ids of `requested` not in `done`, in request order, each once.
    static func idTexts(notIn done: [UUID], of requested: [UUID]) -> [String] {
        let found = Set(done)
        var seen = Set<UUID>()
        return requested.filter { !found.contains($0) && seen.insert($0).inserted }.map { $0.uuidString.lowercased() }
    }
}
