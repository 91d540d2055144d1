import Depot
import DepotConformance
import Foundation
import Testing
import TestSupport

@Suite("MessageGroupStore conformance")
struct GroupConformanceTests {
    @Test("MemoryStore", arguments: GroupConformanceCheck.all)
    func memory(_ check: GroupConformanceCheck) async throws {
        try await MessageGroupStoreConformance { MemoryStore(name: "groups") }.run(check)
    }

    @Test("PostgresStore", arguments: GroupConformanceCheck.all)
    func postgres(_ check: GroupConformanceCheck) async throws {
        let pool = try await TestDatabase.shared()
        try await MessageGroupStoreConformance {
            PostgresStore(name: try await TestDatabase.declareStore(on: pool), pool: pool)
        }.run(check)
    }
}
