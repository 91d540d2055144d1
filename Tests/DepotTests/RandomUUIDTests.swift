@testable import Depot
import Foundation
import Testing

/// Ids drawn many at a time: version 4, RFC 4122 variant, all different, and given ids kept.
@Suite("Random ids")
struct RandomUUIDTests {
    @Test("ids drawn together are version 4, of the RFC 4122 variant and all different")
    func drawnTogether() {
        let ids = UUID.random(count: 10_000)
        #expect(ids.count == 10_000)
        #expect(Set(ids).count == 10_000)
        #expect(ids.allSatisfy { $0.uuid.6 >> 4 == 4 && $0.uuid.8 >> 6 == 0b10 })
        #expect(UUID.random(count: 0).isEmpty)
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
