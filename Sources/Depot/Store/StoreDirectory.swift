import Foundation
import Postgres

/// Finds the `MessageStore` behind a store name, by the kind its row declares: `postgres`
/// stores are shared through the database; `memory` and `journal` stores live in this process,
/// one per name (a journal store also in its file under `journalFolder`).
public final class StoreDirectory: @unchecked Sendable {
    let pool: ConnectionPool
    /// Where `journal` stores keep their files.
    public let journalFolder: URL
    private let lock = NSLock()
    private var memoryStores: [String: MemoryStore] = [:]
    private var journalStores: [String: JournalStore] = [:]

    /// - Parameter journalFolder: where `journal` stores keep their files. Default
    ///   `StoreDirectory.defaultJournalFolder`.
    public init(pool: ConnectionPool, journalFolder: URL? = nil) {
        self.pool = pool
        self.journalFolder = journalFolder ?? Self.defaultJournalFolder
    }

    /// `$DEPOT_JOURNAL_DIR` if set, else `.depot/journal` in the current directory.
    public static var defaultJournalFolder: URL {
        if let folder = ProcessInfo.processInfo.environment["DEPOT_JOURNAL_DIR"], !folder.isEmpty {
            return URL(fileURLWithPath: folder, isDirectory: true)
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
            .appendingPathComponent(".depot/journal", isDirectory: true)
    }

    /// The store `name` of kind `kind`; throws when this process cannot serve that kind, or when
    /// a journal cannot be opened (held by another process, unreadable, damaged).
    public func store(named name: String, kind: StoreKind) throws -> any MessageStore {
        switch kind {
        case .postgres:
            return PostgresStore(name: name, pool: pool)
        case .memory:
            return lock.withLock {
                if let existing = memoryStores[name] { return existing }
                let created = MemoryStore(name: name)
                memoryStores[name] = created
                return created
            }
        case .journal:
            // Opened under the lock: two callers racing for one name must not open it twice.
            return try lock.withLock {
                if let existing = journalStores[name] { return existing }
                let opened = try JournalStore(name: name, folder: journalFolder)
                journalStores[name] = opened
                return opened
            }
        }
    }
}
