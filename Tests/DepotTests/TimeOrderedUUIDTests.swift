@testable import Depot
import Foundation
import Testing

/// Ids drawn many at a time: version 7 with the millisecond they were made, the RFC 9562
/// variant, all different, in order, and given ids kept.
@Suite("Time-ordered ids")
struct TimeOrderedUUIDTests {
    /// The 48-bit Unix milliseconds at the front of a version 7 id.
    func milliseconds(_ id: UUID) -> UInt64 {
        let u = id.uuid
        return [u.0, u.1, u.2, u.3, u.4, u.5].reduce(0) { $0 << 8 | UInt64($1) }
    }

    @Test("ids drawn together are version 7, of the RFC 9562 variant, all different and ascending")
    func drawnTogether() {
        let at = Date(timeIntervalSince1970: 1_800_000_000.5)
        let ids = UUID.timeOrdered(count: 4096, at: at)
        #expect(ids.count == 4096)
        #expect(Set(ids).count == 4096)
        #expect(ids.allSatisfy { $0.uuid.6 >> 4 == 7 && $0.uuid.8 >> 6 == 0b10 })
        #expect(ids.allSatisfy { milliseconds($0) == 1_800_000_000_500 })
        // PostgreSQL compares uuids byte by byte, as the string form sorts.
        #expect(ids.map(\.uuidString) == ids.map(\.uuidString).sorted(), "ascending in the order drawn")
        #expect(UUID.timeOrdered(count: 0).isEmpty)
    }

    @Test("ids made later sort after ids made earlier")
    func laterSortsAfter() {
        let earlier = UUID.timeOrdered(count: 100, at: Date(timeIntervalSince1970: 1_800_000_000))
        let later = UUID.timeOrdered(count: 100, at: Date(timeIntervalSince1970: 1_800_000_000.001))
        #expect(earlier.map(\.uuidString).max()! < later.map(\.uuidString).min()!)
        #expect(milliseconds(UUID.timeOrdered()) >= UInt64(Date().timeIntervalSince1970 * 1000) - 1000)
    }

    @Test("filling keeps the ids given and draws the missing ones")
    func fillingKeepsGivenIds() {
        let given = UUID()
        let filled = UUID.filling([nil, given, nil])
        #expect(filled.count == 3)
        #expect(filled[1] == given)
        #expect(Set(filled).count == 3)
    }
}
