import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A `depot node --http 127.0.0.1:0` child process and the port it printed.
public struct HTTPNodeProcess: Sendable {
    public let child: ChildProcess
    public let port: Int
    /// Its --journal folder, removed by `kill()`.
    let journal: String

    /// Its resident memory now and at its peak, from /proc/PID/status.
    public var memory: ProcessMemory { ProcessMemory(pid: child.pid) }

    /// Stops it with SIGKILL and removes its output files and journal folder.
    public func kill() {
        child.signal(SIGKILL)
        child.cleanUp()
        try? FileManager.default.removeItem(atPath: journal)
    }
}

/// VmRSS and VmHWM of a process, in bytes (zero when /proc cannot be read).
public struct ProcessMemory: Sendable, CustomStringConvertible {
    public let resident: Int
    public let peak: Int

    public init(pid: pid_t) {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        func kibibytes(_ field: String) -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }) else { return 0 }
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        resident = kibibytes("VmRSS")
        peak = kibibytes("VmHWM")
    }

    public var description: String { "VmRSS \(resident >> 20) MiB, VmHWM \(peak >> 20) MiB" }
}

extension Cluster {
    /// Starts `depot node --http 127.0.0.1:0` on this database and waits until it listens.
    public func startHTTPNodeProcess(_ name: String, environment: [String: String] = [:], arguments: [String] = []) async throws -> HTTPNodeProcess {
        let journal = FileManager.default.temporaryDirectory.appendingPathComponent("depot-journal-\(UUID().uuidString.prefix(8))").path
        let child = try ChildProcess(depotExecutable.path,
                                     ["node", "--name", name, "--http", "127.0.0.1:0", "--lease", "2s", "--reconcile", "1s", "--heartbeat", "1s",
                                      "--journal", journal] + arguments,
                                     environment: ["DEPOT_DATABASE_URL": url].merging(environment) { $1 })
        var port: Int?
        _ = try await eventually(timeout: .seconds(20)) {
            if let range = child.stderr.range(of: "HTTP on 127.0.0.1:") {
                port = Int(child.stderr[range.upperBound...].prefix { $0.isNumber })
            }
            return port != nil
        }
        guard let port else {
            child.signal(SIGKILL)
            struct NotListening: Error, CustomStringConvertible { let description: String }
            throw NotListening(description: "depot node never said where it listens: \(child.stderr)")
        }
        return HTTPNodeProcess(child: child, port: port, journal: journal)
    }
}
