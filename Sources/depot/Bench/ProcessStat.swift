import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One process as Linux's /proc/PID/stat describes it: its state, parent and CPU time, its
/// children's once reaped. Nil when there is no such process (or no /proc).
struct ProcessStat {
    let command: String
    let state: Character
    let parent: Int32
    /// User plus system CPU seconds it used.
    let cpuSeconds: Double
    /// User plus system CPU seconds of its children that ended and were waited for.
    let reapedChildrenCPUSeconds: Double

    init?(_ pid: Int32) {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")") else { return nil }
        // After the command: state, ppid, …; utime, stime, cutime, cstime are stat's fields
        // 14–17, so 11–14 counted from the state.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 14, let state = fields[0].first, let parent = Int32(fields[1]),
              let user = Double(fields[11]), let system = Double(fields[12]),
              let childrenUser = Double(fields[13]), let childrenSystem = Double(fields[14]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        command = String(text[text.index(after: open)..<close])
        self.state = state
        self.parent = parent
        cpuSeconds = (user + system) / ticks
        reapedChildrenCPUSeconds = (childrenUser + childrenSystem) / ticks
    }

    /// Every process id in /proc now.
    static func allProcessIDs() -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
    }
}
