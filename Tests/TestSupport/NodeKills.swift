import Depot
import DepotProcess
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension Cluster {
    /// Stores `messages` into `store` `chunk` at a time, each chunk once fewer than `below` wait
    /// there, so that nodes are busy with them all the while rather than handed one big backlog.
    public func trickle(_ messages: [OutgoingMessage], into store: String, chunk: Int = 50, below: Int = 100) -> Task<Void, Error> {
        let target = PostgresStore(name: store, pool: pool)
        return Task {
            for start in stride(from: 0, to: messages.count, by: chunk) {
                _ = try await eventually(timeout: .seconds(30), every: .milliseconds(5)) {
                    try await integer("SELECT count(*) FROM depot.messages WHERE store = '\(store)'") < below
                }
                _ = try await target.store(Array(messages[start..<min(start + chunk, messages.count)]))
            }
        }
    }

    /// Kills node `name`'s process with SIGKILL the moment it holds a live lease (at once if none
    /// shows within 20 s), waits for it to end, and returns whether it held one when killed.
    public func killWhileHoldingLease(_ process: ChildProcess, node name: String) async throws -> Bool {
        let held = try await eventually(timeout: .seconds(20), every: .milliseconds(1)) {
            guard try await integer("SELECT count(*) FROM depot.messages WHERE locked_by LIKE '\(name)/%' AND locked_until > now()") > 0
            else { return false }
            process.signal(SIGKILL)
            return true
        }
        if !held { process.signal(SIGKILL) }
        _ = await process.wait()
        return held
    }
}
