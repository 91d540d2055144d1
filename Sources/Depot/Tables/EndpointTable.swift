import Foundation
import Postgres

/// Every statement on `depot.endpoints`, and its row decoder.
package enum EndpointTable {
    static let endpointList: SQL = "SELECT name, url, method, timeout_ms, headers, message_headers FROM depot.endpoints ORDER BY name"

    /// An endpoint row from `e`; the table's checks judge it.
    static func endpointInsert(_ e: EndpointDefinition) -> SQL {
        """
        INSERT INTO depot.endpoints (name, url, method, timeout_ms, headers, message_headers)
        VALUES (\(e.name), \(e.url.absoluteString), \(e.method), \(Int32(clamping: e.timeoutMilliseconds)), \(e.headers), \(e.messageHeaders))
        """
    }

    /// An imported endpoint: its URL, method and timeout, updating a row of the same name (its
    /// headers are left as they are); the one row answers whether it was new.
    package static func endpointImport(name: String, url: String, method: String, timeoutMilliseconds: Int) -> SQL {
        """
        INSERT INTO depot.endpoints (name, url, method, timeout_ms) VALUES (\(name), \(url), \(method), \(Int32(clamping: timeoutMilliseconds)))
        ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url, method = EXCLUDED.method, timeout_ms = EXCLUDED.timeout_ms
        RETURNING (xmax = 0)
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
