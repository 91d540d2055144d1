import DepotHTTP
import DepotProcess
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The `depot node --http` processes of a chaos run, each with its own port and journal, which
/// survive their own `kill -9`: a killed node is started again on the same port and journal.
final class ChaosNodes: @unchecked Sendable {
    struct Slot {
        let name: String
        let port: Int
        let journal: URL
        var process: ChildProcess
    }

    private let binary: String
    private let databaseURL: String
    private let lease: String
    private let lock = NSLock()
    private var slots: [Slot] = []

    /// Starts `count` nodes whose journals live under `folder`.
    init(count: Int, binary: String, databaseURL: String, folder: URL, lease: String) throws {
        self.binary = binary
        self.databaseURL = databaseURL
        self.lease = lease
        for index in 0..<count {
            let name = "chaos-\(index + 1)"
            let port = try freeLoopbackPort()
            let journal = folder.appendingPathComponent(name)
            slots.append(Slot(name: name, port: port, journal: journal, process: try start(name: name, port: port, journal: journal)))
        }
    }

    var ports: [Int] { lock.withLock { slots.map(\.port) } }
    var journals: [URL] { lock.withLock { slots.map(\.journal) } }

    private func start(name: String, port: Int, journal: URL) throws -> ChildProcess {
        try ChildProcess(binary, ["node", "--name", name, "--http", "127.0.0.1:\(port)", "--journal", journal.path,
                                  "--lease", lease, "--heartbeat", "1s", "--reconcile", "1s", "--primary-timeout", "2s"],
                         environment: ["DEPOT_DATABASE_URL": databaseURL])
    }

    /// `kill -9` of node `index`, then the same node started again at once.
    func killAndRestart(_ index: Int) async throws {
        let victim = lock.withLock { slots[index] }
        victim.process.signal(SIGKILL)
        _ = await victim.process.wait()
        victim.process.cleanUp()
        let restarted = try start(name: victim.name, port: victim.port, journal: victim.journal)
        lock.withLock { slots[index].process = restarted }
    }

    /// Waits until every node answers /healthz (any status: it is listening), or throws naming the first that does not.
    func waitUntilListening(timeout: Duration) async throws {
        let client = HTTPClient()
        for (index, port) in ports.enumerated() {
            let deadline = ContinuousClock.now + timeout
            while (try? await client.send(HTTPRequest(method: "GET", target: "/healthz"),
                                          to: URL(string: "http://127.0.0.1:\(port)/healthz")!, timeout: .seconds(2))) == nil {
                guard ContinuousClock.now < deadline else {
                    let tail = lock.withLock { slots[index].process.stderr.suffix(1000) }
                    throw CLIFailure.unavailable("chaos node \(index + 1) did not listen on port \(port) within \(timeout): \(tail)")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// SIGTERM to every node; waits for each and removes their output files.
    func stopAll() async {
        let all = lock.withLock { slots.map(\.process) }
        all.forEach { $0.signal(SIGTERM) }
        for process in all {
            let pid = process.pid
            let killer = Task {
                try? await Task.sleep(for: .seconds(30))
                if !Task.isCancelled { kill(pid, SIGKILL) }
            }
            _ = await process.wait()
            killer.cancel()
            process.cleanUp()
        }
    }
}
