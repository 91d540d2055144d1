import DepotHTTP

/// The headers of a delivery request: the message's own, then the endpoint row's over them, then
/// Depot's. A producer must not be able to override what the operator set on the endpoint
/// (an `Authorization`, an API key) nor steer the connection: message headers named `Host` or a
/// hop-by-hop field (RFC 9110 7.6.1) are left out, as are those Depot sets itself; an endpoint
/// with `message_headers` lets only the names it lists pass.
enum EndpointRequestHeaders {
    /// Names a message header may not carry onto the wire, lowercased.
    static let reserved: Set<String> = [
        "host", "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authorization", "proxy-authenticate", "content-length", "expect", "content-type",
        "depot-message-id", "depot-attempt",
    ]

    static func headers(for message: Message, to endpoint: EndpointDefinition) -> HTTPHeaders {
        var headers = HTTPHeaders()
        for (name, value) in message.headers.sorted(by: { $0.key < $1.key }) where passes(name, endpoint) {
            headers.set(name, value)
        }
        // Set after the message's: a name the endpoint sets replaces the message's value.
        for (name, value) in endpoint.headers.sorted(by: { $0.key < $1.key }) { headers.set(name, value) }
        headers.set("Content-Type", message.contentType ?? "application/octet-stream")
        headers.set("Depot-Message-Id", message.id.uuidString.lowercased())
        headers.set("Depot-Attempt", String(message.attempts))
        return headers
    }

    /// Whether the message header `name` goes with the request to `endpoint`.
    static func passes(_ name: String, _ endpoint: EndpointDefinition) -> Bool {
        let lowered = name.lowercased()
        if let allowed = endpoint.messageHeaders, !allowed.contains(where: { $0.lowercased() == lowered }) { return false }
        return !reserved.contains(lowered) && !endpoint.headers.keys.contains { $0.lowercased() == lowered }
    }
}
