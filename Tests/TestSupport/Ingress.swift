import Depot
import DepotHTTP
import Foundation
import Postgres

/// HTTP ingress running in the test process.
public struct RunningIngress: Sendable {
    public let server: HTTPServer
    public let metrics: NodeMetrics
    /// `http://127.0.0.1:PORT`
    public let base: URL

    /// `base` + `path`.
    public func url(_ path: String) -> URL { URL(string: base.absoluteString + path)! }

    /// Sends one request with a fresh client and a 10 s timeout.
    public func send(_ method: String, _ path: String, headers: HTTPHeaders = [:], body: Data = Data(),
                     client: HTTPClient = HTTPClient()) async throws -> HTTPResponse {
        try await client.send(HTTPRequest(method: method, target: path, headers: headers, body: body), to: url(path), timeout: .seconds(10))
    }
}

extension Cluster {
    /// Starts ingress on a free loopback port, producing into this cluster's database; `arrivals`
    /// wakes its waiting claims (pass a running node's to have its LISTEN wake them).
    public func startIngress(node: String = "node-a", token: String? = nil, scopedTokens: [IngressTokens.Scoped] = [],
                             stores: StoreDirectory? = nil, metrics: NodeMetrics = NodeMetrics(), limits: HTTPLimits = HTTPLimits(),
                             arrivals: StoreArrivals = StoreArrivals(), producer producerConfiguration: Producer.Configuration = .init()) throws -> RunningIngress {
        let producer = Producer(pool: pool, stores: stores ?? StoreDirectory(pool: pool), configuration: producerConfiguration, metrics: metrics)
        let ingress = IngressService(.init(node: node, token: token, scopedTokens: scopedTokens), producer: producer, pool: pool, metrics: metrics,
                                     arrivals: arrivals)
        let server = ingress.server(host: "127.0.0.1", port: 0, limits: limits)
        try server.start()
        return RunningIngress(server: server, metrics: metrics, base: URL(string: "http://127.0.0.1:\(server.port)")!)
    }
}

/// Checks Prometheus text exposition: every line a comment or `name{labels} value`; returns the samples
/// as "name{labels}" → value, or throws naming the first bad line.
public func parsePrometheusText(_ text: String) throws -> [String: Double] {
    struct BadLine: Error, CustomStringConvertible { let description: String }
    let sample = try Regex(#"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*)?\})? (\S+)$"#)
    var samples: [String: Double] = [:]
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
        if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") { continue }
        guard let match = line.wholeMatch(of: sample) else { throw BadLine(description: "not Prometheus text: \(line)") }
        let valueText = String(line.split(separator: " ").last!)
        guard let value = Double(valueText.replacingOccurrences(of: "+Inf", with: "inf")) else {
            throw BadLine(description: "bad value in: \(line)")
        }
        _ = match
        samples[String(line.dropLast(valueText.count + 1))] = value
    }
    return samples
}
