import DepotHTTP
import Foundation

/// How one attempt to deliver a message ended.
public enum DeliveryOutcome: Sendable {
    /// The target took it; the message leaves the store.
    case delivered(response: HTTPResponse?)
    /// A failed attempt, to be retried under the processor's rules.
    case failed(reason: String, response: HTTPResponse?)
    /// No attempt can ever succeed: the endpoint answered a status listed in
    /// `non_retry_status_codes`, or the message cannot be sent at all. Dead-lettered at once.
    case rejected(reason: String, response: HTTPResponse?)
}

/// Where a processor delivers: an endpoint, a handler, or another store.
protocol DeliveryTarget: Sendable {
    /// Delivers `message`, which `consumer` holds a lease on in `source`.
    func deliver(_ message: Message, from source: any MessageStore, consumer: String) async -> DeliveryOutcome
}

/// Sends the message to an HTTP endpoint: payload as body, its content type and headers (the
/// endpoint row's win; see `EndpointRequestHeaders`), plus `Depot-Message-Id` and `Depot-Attempt`.
/// 2xx = delivered.
struct EndpointTarget: DeliveryTarget {
    let endpoint: EndpointDefinition
    let client: HTTPClient
    let nonRetryStatusCodes: Set<Int>

    func deliver(_ message: Message, from source: any MessageStore, consumer: String) async -> DeliveryOutcome {
        for (name, value) in message.headers {
            if let problem = HTTPHeaders.problem(name: name, value: value) {
                return .rejected(reason: "message header cannot be sent over HTTP: \(problem)", response: nil)
            }
        }
        do {
            let response = try await Self.send(message, to: endpoint, client: client)
            if response.isSuccess { return .delivered(response: response) }
            let reason = "endpoint \(endpoint.name) answered \(response.status)"
            if nonRetryStatusCodes.contains(response.status) { return .rejected(reason: reason, response: response) }
            return .failed(reason: reason, response: response)
        } catch {
            // Redacted: the reason goes to last_error, deactivated_reason and the logs.
            return .failed(reason: "endpoint \(endpoint.name) (\(endpoint.url.redactedForDisplay)): \(error)", response: nil)
        }
    }

    static func send(_ message: Message, to endpoint: EndpointDefinition, client: HTTPClient) async throws -> HTTPResponse {
        let headers = EndpointRequestHeaders.headers(for: message, to: endpoint)
        let request = HTTPRequest(method: endpoint.method, target: "/", headers: headers, body: message.payload)
        return try await client.send(request, to: endpoint.url, timeout: endpoint.timeout)
    }
}

/// Runs a named handler; returning = delivered, throwing = a failed attempt.
struct HandlerTarget: DeliveryTarget {
    let name: String
    let handler: MessageHandler
    let context: @Sendable (Message) -> HandlerContext

    func deliver(_ message: Message, from source: any MessageStore, consumer: String) async -> DeliveryOutcome {
        do {
            try await handler(context(message))
            return .delivered(response: nil)
        } catch {
            return .failed(reason: "handler \(name): \(error)", response: nil)
        }
    }
}

/// Moves the message into another store under the same id (moving twice stores it once).
/// Once moved it has left the source, so the ack that follows finds nothing to remove.
struct StoreTarget: DeliveryTarget {
    let store: any MessageStore

    /// True when a move from `source` is a copy and an ack (a local failover store drained back
    /// into PostgreSQL): a whole batch then goes in one store, and the processor's one ack of the
    /// batch removes it from the source, instead of a commit and a journal fsync per message.
    /// Within PostgreSQL a move is one UPDATE in place, message by message.
    func copiesBatches(from source: any MessageStore) -> Bool { !(source is PostgresStore) }

    /// Stores copies of `messages` in the target in one call, in their order and under their ids,
    /// so a batch stored again after a crash before its ack stores nothing twice.
    func copy(_ messages: [Message]) async throws {
        _ = try await store.store(messages.map(OutgoingMessage.init(moving:)))
    }

    func deliver(_ message: Message, from source: any MessageStore, consumer: String) async -> DeliveryOutcome {
        do {
            try await source.move(message, consumer: consumer, to: store)
            return .delivered(response: nil)
        } catch {
            return .failed(reason: "store \(store.name): \(error)", response: nil)
        }
    }
}
