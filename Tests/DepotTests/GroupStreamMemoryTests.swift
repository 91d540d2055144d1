import Depot
import Foundation
import Postgres
import Testing
import TestSupport

/// A group far larger than the memory bound streams through in pages: resident memory stays
/// under 100 MiB. DEPOT_GROUP_STREAM_COUNT sets the group's size (default 200,000; the issue's
/// 1,000,000 is measured by hand with it, the figure in the commit and the notes).
@Suite("Message group streaming memory")
struct GroupStreamMemoryTests {
    /// VmRSS and VmHWM of this process, in KiB, from /proc/self/status.
    static func residentKiB() throws -> (rss: Int, peak: Int) {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        func field(_ name: String) -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return -1 }
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? -1
        }
        return (field("VmRSS"), field("VmHWM"))
    }

    @Test("a large group streams in order with resident memory growing by less than 60 MiB (a node under 100 MiB)")
    func largeGroupStreamsInBoundedMemory() async throws {
        let count = Int(ProcessInfo.processInfo.environment["DEPOT_GROUP_STREAM_COUNT"] ?? "") ?? 200_000
        let pool = try await TestDatabase.shared()
        let store = PostgresStore(name: try await TestDatabase.declareStore(on: pool), pool: pool)
        // Filled through depot.group_add with arrays made on the server: 200-byte payloads, so
        // the whole group (40 MB at 200,000, 200 MB at 1,000,000) would not fit the bound.
        let fillStart = ContinuousClock.now
        let chunk = 50_000
        for start in stride(from: 0, to: count, by: chunk) {
            let end = min(start + chunk, count) - 1
            try await pool.query("""
                SELECT added FROM depot.group_add(\(store.name), 'big',
                    ARRAY(SELECT convert_to(lpad(i::text, 200, '0'), 'UTF8') FROM generate_series(\(start), \(end)) i ORDER BY i))
                """)
        }
        let filled = ContinuousClock.now - fillStart
        #expect(try await store.groupMetadata("big")?.size == count)

        let before = try Self.residentKiB()
        var highest = before.rss
        var seen = 0
        var inOrder = true
        let streamStart = ContinuousClock.now
        for try await message in store.messages(inGroup: "big", pageSize: 1000) {
            if inOrder, Int(String(decoding: message.payload, as: UTF8.self)) != seen { inOrder = false }
            seen += 1
            if seen % 10_000 == 0 { highest = max(highest, try Self.residentKiB().rss) }
        }
        let streamed = ContinuousClock.now - streamStart
        let after = try Self.residentKiB()
        print("group stream: \(count) messages filled in \(filled), streamed in \(streamed); VmRSS before \(before.rss) KiB, highest \(highest) KiB, after \(after.rss) KiB; VmHWM \(after.peak) KiB")
        #expect(seen == count)
        #expect(inOrder, "messages came out of order")
        // This process holds whatever earlier tests left (160 MiB in a full run), so what the
        // stream may cost is judged as growth: a node idles at about 40 MiB, and 60 MiB of growth
        // keeps such a node under the 100 MiB (alone, the test grew by about 1 MiB).
        #expect(highest - before.rss < 60 * 1024, "resident memory grew from \(before.rss) to \(highest) KiB while streaming")
        try await store.removeGroup("big")
    }
}
