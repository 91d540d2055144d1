import Foundation
import Postgres

/// The databases that refused this process a direct INSERT or COPY into `depot.messages`, by
/// connection string. A role that only produces (a member of `depot_producer`) has no privilege
/// on the table and stores through `depot.store_batch` instead, which runs as the table's owner;
/// remembered so that such a producer pays the refusal once, not on every write. Never wrong
/// either way: store_batch stores the same messages, only without COPY's speed.
enum DirectInsertRefusals {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var refused: Set<String> = []

    /// Whether `pool`'s database refused a direct insert before.
    static func contains(_ pool: ConnectionPool) -> Bool {
        lock.withLock { refused.contains(pool.configuration.connectionString) }
    }

    /// Remembers that `pool`'s database refused a direct insert.
    static func insert(_ pool: ConnectionPool) {
        _ = lock.withLock { refused.insert(pool.configuration.connectionString) }
    }
}
