import Foundation
import Postgres

/// Every statement on `depot.endpoints`, and its row decoder.
enum EndpointTable {
    static let endpointList: SQL = "SELECT name, url, method, timeout_ms, headers, message_headers FROM depot.endpoints ORDER BY name"

    /// An endpoint row from `e`; the table's checks judge it.
    static func endpointInsert(_ e: EndpointDefinition) -> SQL {
        """
        INSERT INTO depot.endpoints (name, url, method, timeout_ms, headers, message_headers)
        VALUES (\(e.name), \(e.url.absoluteString), \(e.method), \(Int32(clamping: e.timeoutMilliseconds)), \(e.headers), \(e.messageHeaders))
        """
    }

    /// The row as a definition, or why a node cannot use it (a URL Foundation cannot parse).
    static func endpoint(from row: Row) throws -> Result<EndpointDefinition, EndpointUnusable> {
        let (name, url, method, timeout, headers, messageHeaders) = try row.decode((String, String, String, Int, [String: String], [String]?).self)
        guard let parsed = URL(string: url), parsed.host != nil else {
            return .failure(EndpointUnusable(name: name, reason: "endpoint \"\(name)\" has url \"\(url)\", which is not a URL with a host"))
        }
        return .success(EndpointDefinition(name: name, url: parsed, method: method, timeoutMilliseconds: timeout, headers: headers,
                                           messageHeaders: messageHeaders))
    }
}

/// An endpoint row a node cannot use, and why.
struct EndpointUnusable: Error {
    let name: String
    let reason: String
}
