import DepotHTTP
import Foundation

/// A node's HTTP listener as a service of its `ServiceGroup`, the first to stop. It is
/// listening before the group starts (so that a port that cannot be bound stops the command at
/// once, and producers are served while the node waits for the database). At shutdown it stops
/// accepting, answers every request it has read (a committed message gets its 202), has waiting
/// claims answer with what they have, closes idle keep-alive connections, and then stops.
public struct HTTPIngressService: Service {
    public let name = "HTTP ingress"
    let server: HTTPServer
    let arrivals: StoreArrivals

    /// - Parameters:
    ///   - server: started already.
    ///   - arrivals: closed once the server drains, so long polls answer at once.
    public init(server: HTTPServer, arrivals: StoreArrivals) {
        self.server = server
        self.arrivals = arrivals
    }

    public func run(_ shutdown: ShutdownSignal) async {
        await shutdown.wait()
        let (server, arrivals) = (server, arrivals)
        // The server's shutdown blocks until its connections are closed: on a dispatch thread.
        await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                server.shutdown(whenDraining: { arrivals.close() })
                server.stop()
                finished.resume()
            }
        }
    }
}
