import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process started with posix_spawn; its output goes to files, so it can never block
/// on a full pipe, and tests can kill it (`kill -9` included) and wait for it.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    public let stdoutPath: String
    public let stderrPath: String
    private let lock = NSLock()
    private var exitStatus: Int32?

    /// Starts `executable` with `arguments`; `environment` is added to this process's own.
    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                removing removed: [String] = [], input: Data? = nil) throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("depot-child-\(UUID().uuidString.prefix(8))").path
        stdoutPath = base + ".out"
        stderrPath = base + ".err"
        let stdinPath = base + ".in"
        FileManager.default.createFile(atPath: stdinPath, contents: input ?? Data())
        defer { unlink(stdinPath) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)

        var env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        removed.forEach { env[$0] = nil }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }

        // A child inherits its spawner's blocked signals and ignored dispositions: Swift's pool
        // threads block most signals, and a parent that traps SIGTERM ignores it. Start every
        // child with nothing blocked and default dispositions, so SIGTERM and timers (SIGALRM) work.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGALRM, SIGCHLD, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var child: pid_t = 0
        let result = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw NSError(domain: "ChildProcess", code: Int(result), userInfo: [NSLocalizedDescriptionKey: "cannot start \(executable): \(String(cString: strerror(result)))"])
        }
        pid = child
    }

    /// Sends a signal (SIGTERM by default; SIGKILL for `kill -9`).
    public func signal(_ signal: Int32 = SIGTERM) { kill(pid, signal) }

    /// Waits for the process to end, off the cooperative pool; returns its exit status
    /// (128 + signal number when a signal ended it).
    public func wait() async -> Int32 {
        if let status = lock.withLock({ exitStatus }) { return status }
        // waitpid blocks: on a thread of its own, not on Dispatch's few global workers.
        return await withCheckedContinuation { continuation in
            Thread {
                var raw: Int32 = 0
                var status: Int32
                while true {
                    let result = waitpid(self.pid, &raw, 0)
                    if result == self.pid { break }
                    if result == -1 && errno != EINTR { raw = -1; break }
                }
                if raw == -1 { status = self.lock.withLock { self.exitStatus } ?? -1 } else {
                    let signaled = (raw & 0x7f) != 0
                    status = signaled ? 128 + (raw & 0x7f) : (raw >> 8) & 0xff
                }
                self.lock.withLock { if self.exitStatus == nil { self.exitStatus = status } }
                continuation.resume(returning: self.lock.withLock { self.exitStatus! })
            }.start()
        }
    }

    public var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Removes the output files.
    public func cleanUp() {
        unlink(stdoutPath)
        unlink(stderrPath)
    }
}
