import DepotHTTP
import Foundation

/// Back ends that answer 200 to every delivery and write down its `Depot-Message-Id`.
struct ChaosBackEnds {
    let servers: [HTTPServer]

    /// Starts `count` back ends on free loopback ports.
    static func start(count: Int, ledger: ChaosLedger) throws -> ChaosBackEnds {
        let servers = try (0..<count).map { _ in
            let server = HTTPServer(.init(host: "127.0.0.1", port: 0)) { request in
                if let id = request.headers["Depot-Message-Id"] { ledger.deliver(id.lowercased()) }
                return HTTPResponse(status: 200)
            }
            try server.start()
            return server
        }
        return ChaosBackEnds(servers: servers)
    }

    var urls: [String] { servers.map { "http://127.0.0.1:\($0.port)/in" } }

    func stop() { servers.forEach { $0.stop() } }
}
