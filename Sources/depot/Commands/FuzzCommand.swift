import Depot
import Foundation
import Postgres

#if canImport(Glibc)
import Glibc
#endif

let fuzzCommand = Command(
    name: "fuzz",
    summary: "Send valid, malformed and randomly mutated requests to a node's HTTP ingress and check its answers.",
    options: [
        OptionSpec(name: "port", value: "PORT", help: "the node's --http port on 127.0.0.1 (required)"),
        OptionSpec(name: "store", value: "NAME", help: "a declared store the valid requests go to (default fuzz)"),
        OptionSpec(name: "requests", value: "N", help: "how many requests (default 100000)"),
        OptionSpec(name: "workers", value: "N", help: "connections at once (default 4)"),
        OptionSpec(name: "seed", value: "N", help: "the generator's seed; a run repeats with its seed (default 1)"),
        OptionSpec(name: "pid", value: "PID", help: "the node's process, to check it is alive and report its memory from /proc"),
    ],
    notes: """
        Prints one JSON object: requests, statuses, messages created, answers missing, and
        problems (an undocumented status such as 500, no answer within 15 s, a node that died).
        With DEPOT_DATABASE_URL set, also checks that depot.messages holds exactly the messages
        the node said it created (start from an empty database). Exits 1 when a problem was found.
        Example: depot fuzz --port 8080 --requests 100000 --pid $(pgrep -f 'depot node')
        """
) { arguments in
    guard let port = try arguments.integer("port", in: 1...65535) else { throw CLIFailure.usage("--port is required: depot fuzz --port 8080") }
    let store = arguments.value("store") ?? "fuzz"
    let requests = try arguments.integer("requests", in: 1...100_000_000) ?? 100_000
    let workers = try arguments.integer("workers", in: 1...256) ?? 4
    let seed = UInt64(try arguments.integer("seed", in: 0...Int.max) ?? 1)
    let pid = try arguments.integer("pid", in: 1...Int(Int32.max)).map { pid_t($0) }
    let before = pid.map(FuzzMemory.init)
    var report = await FuzzRun.run(host: "127.0.0.1", port: port, store: store, requests: requests, workers: workers, seed: seed)
    var summary: [String: String] = [:]
    if let pid {
        if kill(pid, 0) != 0 { report.problems.append("the node (pid \(pid)) is gone") }
        let after = FuzzMemory(pid: pid)
        summary["memory"] = "VmRSS \((before?.resident ?? 0) >> 20) → \(after.resident >> 20) MiB, VmHWM \(after.peak >> 20) MiB"
    }
    if ProcessInfo.processInfo.environment["DEPOT_DATABASE_URL"] != nil {
        let stored = try await withDatabase { pool in
            try await pool.query("SELECT count(*) FROM depot.messages").first?.decode(at: 0, as: Int.self) ?? 0
        }
        summary["stored"] = String(stored)
        if stored != report.created { report.problems.append("the node said it created \(report.created) messages; depot.messages holds \(stored)") }
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    struct Output: Encodable { let report: FuzzReport; let summary: [String: String] }
    print(String(decoding: try encoder.encode(Output(report: report, summary: summary)), as: UTF8.self))
    if !report.problems.isEmpty { exit(ExitStatus.failure) }
}

/// VmRSS and VmHWM of a process from /proc/PID/status, in bytes.
struct FuzzMemory {
    let resident: Int
    let peak: Int

    init(pid: pid_t) {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        func field(_ name: String) -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        resident = field("VmRSS")
        peak = field("VmHWM")
    }
}
