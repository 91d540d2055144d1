import Foundation
import Testing
import TestSupport

/// The README's first command: `scripts/demo --once` on this checkout, with the depot binary the
/// tests built (the script would otherwise make a release build), its own state folder and ports.
@Suite("scripts/demo")
struct DemoScriptTests {
    @Test("scripts/demo --once exits 0, spreads 300 messages over three back ends, settles 20 payments, and leaves no process behind")
    func demoOnce() async throws {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("depot-demo-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: state) }
        let base = Int.random(in: 10_000...30_000)  // below the ephemeral range (32768+), so no outgoing socket holds a port
        let output = try await runProcess(packageRoot.appendingPathComponent("scripts/demo"), ["--once"], environment: [
            "DEPOT_BIN": depotExecutable.path, "DEPOT_DEMO_DIR": state, "DEPOT_DEMO_PORT": String(base),
        ])
        #expect(output.status == 0, "stderr: \(output.stderr.suffix(2000))")
        #expect(output.stdout.contains("total: 300"), "\(output.stdout.suffix(2000))")
        #expect(output.stdout.contains("got 20 payment requests"))
        let shares = output.stdout.split(separator: "\n").filter { $0.contains("SimpleStockQuoteService") }
            .compactMap { Int($0.split(separator: " ").last ?? "") }
        #expect(shares.count == 3 && shares.allSatisfy { $0 >= 30 }, "spread: \(shares)")
        // Nodes, back ends and PostgreSQL all name the state folder or the demo's ports.
        for pattern in [state, "--port \(base + 1)", "--port \(base + 4)"] {
            let left = try await runProcess(URL(fileURLWithPath: "/usr/bin/pgrep"), ["-af", "--", pattern])
            #expect(left.status == 1, "still running after the demo exited: \(left.stdout)")
        }
    }
}
