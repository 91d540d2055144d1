import Depot
import Foundation
import Postgres

/// The rows a chaos run declares: a store with a journal failover for HTTP producers, a plain
/// store for library producers, the back ends as endpoints, and forwarding processors to them.
enum ChaosSetup {
    static let httpStore = "chaos-in"
    static let journalStore = "chaos-journal"
    static let libraryStore = "chaos-direct"

    /// Deletes earlier chaos rows and messages, then declares this run's.
    static func declare(on pool: ConnectionPool, backEnds: [String]) async throws {
        try await pool.withTransaction { connection in
            try await connection.execute("DELETE FROM depot.processors WHERE left(name, 6) = 'chaos-'")
            try await connection.execute("DELETE FROM depot.endpoints WHERE left(name, 6) = 'chaos-'")
            try await connection.execute("DELETE FROM depot.messages WHERE left(store, 6) = 'chaos-'")
            try await connection.execute("DELETE FROM depot.dead_letters WHERE left(store, 6) = 'chaos-'")
            try await connection.execute("DELETE FROM depot.stores WHERE failover_store IS NOT NULL AND left(name, 6) = 'chaos-'")
            try await connection.execute("DELETE FROM depot.stores WHERE left(name, 6) = 'chaos-'")
            try await connection.execute("INSERT INTO depot.stores (name, kind) VALUES (\(journalStore), 'journal')")
            try await connection.execute("""
                INSERT INTO depot.stores (name, failover_store, guaranteed_delivery) VALUES (\(httpStore), \(journalStore), true)
                """)
            try await connection.execute("INSERT INTO depot.stores (name) VALUES (\(libraryStore))")
            for (index, url) in backEnds.enumerated() {
                let endpoint = "chaos-back-end-\(index + 1)"
                try await connection.execute("INSERT INTO depot.endpoints (name, url) VALUES (\(endpoint), \(url))")
                // Never gives up, never deactivates: every message must arrive.
                try await connection.execute("""
                    INSERT INTO depot.processors (name, kind, store, target_endpoint, interval_ms, batch_size,
                                                  max_delivery_attempts, retry_interval_ms)
                    VALUES (\("chaos-forward-\(index + 1)"), 'forwarding', \(httpStore), \(endpoint), 0, 50, 0, 200)
                    """)
            }
            try await connection.execute("""
                INSERT INTO depot.processors (name, kind, store, target_endpoint, interval_ms, batch_size,
                                              max_delivery_attempts, retry_interval_ms)
                VALUES ('chaos-forward-direct', 'forwarding', \(libraryStore), 'chaos-back-end-1', 0, 50, 0, 200)
                """)
        }
    }

    /// Which of `ids` are still in depot.messages.
    static func storedIds(among ids: [String], on pool: ConnectionPool) async throws -> Set<String> {
        guard !ids.isEmpty else { return [] }
        let uuids = ids.compactMap(UUID.init(uuidString:))
        return Set(try await pool.query("SELECT id FROM depot.messages WHERE id = ANY(\(uuids))")
            .map { try $0.decode(at: 0, as: UUID.self).uuidString.lowercased() })
    }

    /// Which of `ids` wait in the nodes' journals (read once the nodes have stopped).
    static func journalledIds(among ids: [String], folders: [URL]) async throws -> Set<String> {
        guard !ids.isEmpty else { return [] }
        let wanted = Set(ids)
        var found: Set<String> = []
        for folder in folders where FileManager.default.fileExists(atPath: folder.appendingPathComponent(JournalStore.fileName(for: journalStore)).path) {
            let journal = try JournalStore(name: journalStore, folder: folder)
            let held = try await journal.peek(limit: 1_000_000)
            await journal.close()
            found.formUnion(held.map { $0.id.uuidString.lowercased() }.filter(wanted.contains))
        }
        return found
    }
}
