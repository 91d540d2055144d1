import DepotProcess
import Foundation

/// The faults of a chaos run: `kill -9` of a random node every so often, and PostgreSQL crashed
/// (by a command the caller gives, such as `scripts/pg crash DIR`) at random moments.
struct ChaosFaults {
    let ledger: ChaosLedger
    let nodes: ChaosNodes
    let nodeCount: Int

    /// Kills and restarts a random node every `every` (±50%) until `deadline`.
    func killNodes(every: Duration, until deadline: ContinuousClock.Instant) async throws {
        while true {
            let wait = every * Double.random(in: 0.5...1.5)
            guard ContinuousClock.now + wait < deadline else { return }
            try await Task.sleep(for: wait)
            try await nodes.killAndRestart(Int.random(in: 0..<nodeCount))
            ledger.killed()
        }
    }

    /// Crashes PostgreSQL `count` times, once at a random moment in each equal slice of the time
    /// from `start` to `deadline`, starting it again after a random pause of up to 300 ms.
    func crashDatabase(count: Int, from start: ContinuousClock.Instant, until deadline: ContinuousClock.Instant,
                       crash: String, restart: String) async throws {
        guard count > 0 else { return }
        let slice = (deadline - start) / count
        for index in 0..<count {
            let moment = start + slice * index + slice * Double.random(in: 0.05...0.85)
            if moment > .now { try await Task.sleep(until: moment) }
            try await Self.shell(crash, what: "the crash command")
            ledger.crashed()
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...300)))
            try await Self.shell(restart, what: "the restart command")
            ledger.databaseAnswers()
        }
    }

    /// Runs `command` with /bin/sh; throws with its output when it fails.
    static func shell(_ command: String, what: String) async throws {
        let child = try ChildProcess("/bin/sh", ["-c", command])
        defer { child.cleanUp() }
        let status = await child.wait()
        guard status == 0 else {
            throw CLIFailure.unavailable("\(what) (\(command)) exited \(status): \(child.stderr.suffix(500))")
        }
    }
}
