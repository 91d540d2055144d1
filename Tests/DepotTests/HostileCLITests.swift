import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Hostile or careless arguments, environments and files: one line on standard error and the
/// documented exit status, never a crash.
@Suite("Hostile CLI input")
struct HostileCLITests {
    static func expectOneLine(_ output: ProcessOutput, status: Int32, containing text: String, _ what: String) {
        expectOneLine(output.status, output.stderr, status: status, containing: text, what)
    }

    static func expectOneLine(_ exit: Int32, _ stderr: String, status: Int32, containing text: String, _ what: String) {
        #expect(exit == status, "\(what): exit \(exit), \(stderr.prefix(300))")
        #expect(stderr.hasPrefix("depot: ") && stderr.split(separator: "\n").count == 1, "\(what): \(stderr.prefix(300))")
        #expect(stderr.contains(text), "\(what): \(stderr.prefix(300))")
    }

    @Test("durations that overflow (--delay, --lease, --heartbeat, --reconcile, --primary-timeout) exit 64 in one line")
    func overflowingDurations() async throws {
        let huge = "99999999999999999999s"
        let store = try await runProcess(depotExecutable, ["store", "s", "--data", "x", "--delay", huge])
        Self.expectOneLine(store, status: 64, containing: "--delay", "store --delay")
        for option in ["lease", "heartbeat", "reconcile", "primary-timeout"] {
            let node = try await runProcess(depotExecutable, ["node", "--name", "a", "--\(option)", huge])
            Self.expectOneLine(node, status: 64, containing: "--\(option)", "node --\(option)")
        }
        let days = try await runProcess(depotExecutable, ["store", "s", "--data", "x", "--delay", "1e300d"])
        Self.expectOneLine(days, status: 64, containing: "3650d", "store --delay 1e300d")
    }

    @Test("import-synapse on 60,000 nested elements exits 65 in one line naming the file and the depth")
    func deeplyNestedXML() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("deep-\(UUID().uuidString.prefix(8)).xml")
        defer { try? FileManager.default.removeItem(at: file) }
        let depth = 60_000
        let xml = String(repeating: "<a>", count: depth) + String(repeating: "</a>", count: depth)
        try Data(xml.utf8).write(to: file)
        let output = try await runProcess(depotExecutable, ["import-synapse", "--dry-run", file.path])
        Self.expectOneLine(output, status: 65, containing: "nested more than 256 deep", "deep XML")
        #expect(output.stderr.contains(file.path))
    }

    @Test("depot node --http refuses an empty DEPOT_HTTP_TOKEN and one with spaces around it: exit 78, one line, nothing listens")
    func badHTTPTokens() async throws {
        let port = try freePort()
        for (token, text) in [("", "empty"), (" s3cret ", "spaces"), ("s3cret\n", "spaces")] {
            // A node that takes the token waits for its database for ever: it gets 10 s, then SIGKILL.
            let child = try ChildProcess(depotExecutable.path, ["node", "--name", "a", "--http", "127.0.0.1:\(port)"],
                                         environment: ["DEPOT_HTTP_TOKEN": token,
                                                       "DEPOT_DATABASE_URL": "postgres://depot@127.0.0.1:1/depot?connect_timeout=1"])
            defer { child.cleanUp() }
            let timer = Task { try await Task.sleep(for: .seconds(10)); child.signal(SIGKILL) }
            let status = await child.wait()
            timer.cancel()
            let stderr = child.stderr
            Self.expectOneLine(status, stderr, status: 78, containing: "DEPOT_HTTP_TOKEN", "token \(token.debugDescription)")
            #expect(stderr.contains(text), "\(stderr)")
            #expect(!stderr.contains("HTTP on"))
        }
    }

    @Test("depot node with a --journal folder it cannot write (a file, or under a file) exits 78 in one line naming the folder")
    func unusableJournalFolder() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("journal-file-\(UUID().uuidString.prefix(8))")
        try Data("x".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        for (folder, http) in [(file.path, false), (file.path + "/journal", false), (file.path + "/journal", true)] {
            // A node that accepts the folder waits for its database for ever: it gets 10 s, then SIGKILL.
            let child = try ChildProcess(depotExecutable.path, ["node", "--name", "a", "--journal", folder] + (http ? ["--http", "127.0.0.1:0"] : []),
                                         environment: ["DEPOT_DATABASE_URL": "postgres://depot@127.0.0.1:1/depot?connect_timeout=1"])
            defer { child.cleanUp() }
            let timer = Task { try await Task.sleep(for: .seconds(10)); child.signal(SIGKILL) }
            let status = await child.wait()
            timer.cancel()
            Self.expectOneLine(status, child.stderr, status: 78, containing: "the journal folder \(folder) cannot be written", "--journal \(folder)")
        }
    }
}
