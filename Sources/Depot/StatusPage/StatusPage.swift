import DepotHTTP
import Foundation
import Postgres

/// The node's live status page: `GET /` or `GET /status` (the shell), `GET /status.css`,
/// `GET /status.js` and `GET /status.json` (the data, read afresh on every request). Who may
/// read it is `IngressService`'s business (the full token, like `/metrics`); this answers.
struct StatusPage: Sendable {
    /// The paths it answers, as `HTTPRequest.path` spells them.
    static let paths: Set<String> = ["/", "/status", "/status.css", "/status.js", "/status.json"]

    /// No inline script or style, nothing from elsewhere: the page's own files and `status.json`.
    static let contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        + "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    let node: String
    let pool: ConnectionPool
    let health: HealthCheck

    /// Throws 405 for a method other than GET and 400 for a request that comes with a body: the
    /// page's routes read none, so a client cannot make the node hold one for them.
    static func checkHead(_ request: HTTPRequest) throws {
        guard request.method == "GET" else { throw HTTPError(405, "\(request.path) takes GET, not \(request.method)") }
        let length = request.headers["Content-Length"]
        if request.headers["Transfer-Encoding"] != nil || (length != nil && length != "0") {
            throw HTTPError(400, "GET \(request.path) takes no body; send it without one")
        }
    }

    /// The answer for `path` (one of `paths`).
    func answer(_ path: String) async -> HTTPResponse {
        switch path {
        case "/status.css": return Self.asset(StatusPageHTML.style, type: "text/css; charset=utf-8")
        case "/status.js": return Self.asset(StatusPageScript.source, type: "text/javascript; charset=utf-8")
        case "/status.json": return await document()
        default: return Self.asset(StatusPageHTML.shell, type: "text/html; charset=utf-8")
        }
    }

    private func document() async -> HTTPResponse {
        if let problem = await health.problem() {
            return Self.secured(HTTPError(503, problem).response)
        }
        let (pool, node) = (self.pool, self.node)
        do {
            let document = try await withDeadline(.seconds(5)) { try await StatusDocument.read(pool: pool, node: node) }
            return Self.secured(HTTPResponse(status: 200, headers: ["Content-Type": "application/json"], body: try document.json()))
        } catch {
            return Self.secured(HTTPError(503, "could not read the status from the database: \(error)").response)
        }
    }

    private static func asset(_ text: String, type: String) -> HTTPResponse {
        secured(HTTPResponse(status: 200, headers: ["Content-Type": type], body: Data(text.utf8)))
    }

    /// `response` with the headers every status answer carries: the policy, no sniffing, no
    /// framing, no caching (the data changes; the files change with the binary).
    static func secured(_ response: HTTPResponse) -> HTTPResponse {
        var response = response
        response.headers.set("Content-Security-Policy", contentSecurityPolicy)
        response.headers.set("X-Content-Type-Options", "nosniff")
        response.headers.set("X-Frame-Options", "DENY")
        response.headers.set("Referrer-Policy", "no-referrer")
        response.headers.set("Cache-Control", "no-store")
        return response
    }
}
