import Foundation
import Postgres

/// The CPU the PostgreSQL server spends, when it runs on this machine (as `scripts/bench`'s
/// does): the postmaster, every backend and background process under it, and those that have
/// ended. With it a drain's figures say what a message costs the server besides the node, a
/// measure that moves far less from run to run than a rate whose commits wait on the disk.
struct ServerCPU: Sendable {
    let postmaster: Int32

    /// The server behind `pool`, found from one backend's parent; nil when that backend is not
    /// a `postgres` process on this machine (a server elsewhere or in a container).
    static func find(_ pool: ConnectionPool) async throws -> ServerCPU? {
        guard let pid = try await pool.query("SELECT pg_backend_pid()").first?.decode(at: 0, as: Int32.self),
              let backend = ProcessStat(pid), backend.command == "postgres",
              let parent = ProcessStat(backend.parent), parent.command == "postgres" else { return nil }
        return ServerCPU(postmaster: backend.parent)
    }

    /// CPU seconds used so far by the server's processes, living and ended.
    var seconds: Double {
        guard let postmaster = ProcessStat(postmaster) else { return 0 }
        let children = ProcessStat.allProcessIDs().lazy.compactMap(ProcessStat.init).filter { $0.parent == self.postmaster }
        return postmaster.cpuSeconds + postmaster.reapedChildrenCPUSeconds + children.reduce(0) { $0 + $1.cpuSeconds }
    }
}
