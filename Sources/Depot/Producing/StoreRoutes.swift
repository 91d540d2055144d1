import Foundation
import Postgres

/// The `depot.stores` rows a producer needs to route a message (kind, failover store,
/// guaranteed delivery), kept in memory and in a file beside the journals, so that a node
/// restarted while the database is down still knows where a store's failover goes.
final class StoreRoutes: @unchecked Sendable {
    private let pool: ConnectionPool
    private let file: URL?
    private let refreshEvery: Duration
    private let lock = NSLock()
    private var stores: [String: StoreDefinition] = [:]
    private var refreshedAt: ContinuousClock.Instant?

    /// - Parameters:
    ///   - file: where the last rows read are kept across restarts; nil keeps them in memory only.
    ///   - refreshEvery: how old the rows may get before a lookup reads them again. Default 5 s.
    init(pool: ConnectionPool, file: URL?, refreshEvery: Duration = .seconds(5)) {
        self.pool = pool
        self.file = file
        self.refreshEvery = refreshEvery
        if let file, let data = try? Data(contentsOf: file),
           let saved = try? JSONDecoder().decode([StoreDefinition].self, from: data) {
            stores = Dictionary(saved.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        }
    }

    /// The row of store `name`. Reads the rows again when they are stale; a name the fresh rows
    /// lack is looked up alone; when the database cannot be read, answers from what it last
    /// read, and throws the database's error only when it has never seen the store.
    func definition(of name: String) async throws -> StoreDefinition {
        let (known, fresh) = lock.withLock {
            (stores[name], refreshedAt.map { ContinuousClock.now - $0 < refreshEvery } ?? false)
        }
        if let known, fresh { return known }
        if fresh {
            // Rows read moments ago lack the name (a store declared since, or a name nobody
            // declared, which anyone may send): one lookup by primary key, not a read of every
            // row. A name not found is not kept, so unknown names cost no memory; one found
            // joins the rows until the next full read.
            guard let found = try await StoreCatalog(pool: pool).definition(of: name) else { throw StoreError.undeclared(name) }
            lock.withLock { stores[name] = found }
            return found
        }
        do {
            try await refresh()
        } catch {
            // Look again only after `refreshEvery`, so an unreachable database does not cost
            // every message a failed connect.
            lock.withLock { refreshedAt = .now }
            if let known { return known }
            throw error
        }
        guard let found = lock.withLock({ stores[name] }) else { throw StoreError.undeclared(name) }
        return found
    }

    /// The row of store `name` as last read, without asking the database.
    func cached(_ name: String) -> StoreDefinition? {
        lock.withLock { stores[name] }
    }

    /// Reads every store row, and saves them beside the journals when they changed.
    func refresh() async throws {
        let rows = try await StoreCatalog(pool: pool).list()
        let changed: Bool = lock.withLock {
            let next = Dictionary(rows.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
            defer {
                stores = next
                refreshedAt = .now
            }
            return next != stores
        }
        if changed, let file { save(rows, to: file) }
    }

    private func save(_ rows: [StoreDefinition], to file: URL) {
        do {
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try JSONEncoder().encode(rows).write(to: file, options: .atomic)
        } catch {
            FileHandle.standardError.write(Data("depot: could not save store routes to \(file.path): \(error)\n".utf8))
        }
    }
}
