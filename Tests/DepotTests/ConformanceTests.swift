import Depot
import DepotConformance
import Foundation
import Testing
import TestSupport

@Suite("MessageStore conformance")
struct ConformanceTests {
    @Test("MemoryStore", arguments: ConformanceCheck.all)
    func memory(_ check: ConformanceCheck) async throws {
        try await MessageStoreConformance { MemoryStore(name: "conformance") }.run(check)
    }

    @Test("JournalStore", arguments: ConformanceCheck.all)
    func journal(_ check: ConformanceCheck) async throws {
        try await withJournalFolder { folder in
            try await MessageStoreConformance { try JournalStore(name: "conformance", folder: folder) }.run(check)
        }
    }

    @Test("PostgresStore", arguments: ConformanceCheck.all)
    func postgres(_ check: ConformanceCheck) async throws {
        let pool = try await TestDatabase.shared()
        try await MessageStoreConformance {
            PostgresStore(name: try await TestDatabase.declareStore(on: pool), pool: pool)
        }.run(check)
    }
}
