import DepotProcess
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A node or back end the benchmark started, with what Linux says it costs: CPU seconds and
/// resident memory from /proc.
final class BenchProcess: Sendable {
    let child: ChildProcess

    init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        child = try ChildProcess(executable, arguments, environment: environment)
    }

    /// True until the process has ended.
    var isRunning: Bool { kill(child.pid, 0) == 0 && !isZombie }

    private var isZombie: Bool { ProcessStat(child.pid).map { $0.state == "Z" } ?? true }

    /// User plus system CPU seconds used so far.
    var cpuSeconds: Double { ProcessStat(child.pid)?.cpuSeconds ?? 0 }

    /// Resident memory in MiB (VmRSS).
    var residentMiB: Double {
        guard let text = try? String(contentsOfFile: "/proc/\(child.pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kilobytes / 1024
    }

    var output: String { child.stdout }

    /// The last lines of its standard error, for a failure message.
    var errorTail: String {
        let lines = child.stderr.split(separator: "\n").suffix(5)
        return lines.isEmpty ? "(no output)" : lines.joined(separator: " | ")
    }

    /// SIGTERM, then SIGKILL after 20 s; waits for the end and removes the output files.
    func stop() async {
        child.signal(SIGTERM)
        let pid = child.pid
        let killer = Task {
            try? await Task.sleep(for: .seconds(20))
            if !Task.isCancelled { kill(pid, SIGKILL) }
        }
        _ = await child.wait()
        killer.cancel()
        child.cleanUp()
    }
}
