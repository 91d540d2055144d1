import Depot
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// What a node prints comes partly from producers: it must never reach the terminal raw.
@Suite("Log injection")
struct LogInjectionTests {
    @Test("the log handler of a real node prints a payload with ESC, BEL, CR, LF and a right-to-left override on one line, every one escaped")
    func logHandlerEscapesControlCharacters() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.addStore("orders")
        try await cluster.addProcessor("sampler", .sampling, from: "orders") {
            $0.handler = "log"
            $0.intervalMilliseconds = 0
        }
        let payload = "ok\u{1B}]0;pwned\u{07}\r2026-12-06T00:00:00.000Z error [node-a] forged\nnext\u{202E}txt\u{85}end"
        _ = try await PostgresStore(name: "orders", pool: cluster.pool).store([OutgoingMessage(text: payload)])
        let node = try cluster.startNodeProcess("node-a")
        defer { node.signal(SIGKILL); node.cleanUp() }
        let logged = try await eventually(timeout: .seconds(20)) { node.stderr.contains("processor sampler message") }
        #expect(logged, "\(node.stderr)")
        let output = node.stderr
        let line = try #require(output.split(separator: "\n").first { $0.contains("processor sampler message") })
        #expect(line.contains(#"ok\u{1B}]0;pwned\u{7}\r2026-12-06T00:00:00.000Z error [node-a] forged\nnext\u{202E}txt\u{85}end"#), "\(line)")
        let raw = output.unicodeScalars.filter { ($0.value < 0x20 && $0 != "\n") || (0x7F..<0xA0).contains($0.value) || $0.value == 0x202E }
        #expect(raw.isEmpty, "raw characters in the node's log: \(raw.map { String($0.value, radix: 16) })")
        #expect(!output.contains("\nnext"), "a payload's line feed started a record of its own")
    }
}
