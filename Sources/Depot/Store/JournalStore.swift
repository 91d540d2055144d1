import Foundation

/// A store held in this process's memory and in an append-only, fsync'd file beside it: what it
/// holds survives a crash (`kill -9`) and a restart. Depot's durable failover store.
///
/// Same semantics as `MemoryStore` (leases, priorities, groups, idempotency keys, given ids,
/// delays). `store` returns only once its messages are written and fsync'd; ack, dead letter,
/// move and purge log the ids that left, fsync'd, before they return. Concurrent calls share
/// one write and fsync (group commit). A message is claimable as soon as it is queued for the
/// file; if the write then fails, it is taken out of line again and `store` throws.
///
/// What a reopen does not bring back: leases, attempts, last errors and release times (every
/// surviving message is ready again, in arrival order, unless its original delay has yet to
/// pass); dead letters, which live in memory as in `MemoryStore` (rare on a failover buffer);
/// and idempotency keys of messages already gone once the file has been compacted.
///
/// One process at a time: the journal is locked while open; `close()` or the process's end
/// releases it.
public final class JournalStore: MessageStore {
    public let name: String
    /// The journal file: `folder/fileName(for: name)`.
    public let fileURL: URL
    private let memory: MemoryStore
    private let journal: JournalFile

    /// Opens store `name`'s journal in `folder`, creating both if missing, and replays it.
    ///
    /// Throws `StoreError` (`.invalidArgument`) when another process, or another open
    /// `JournalStore` in this one, holds the journal; `JournalError` when it cannot be read or is
    /// damaged. A torn last record (an interrupted write) is cut off with a warning on stderr.
    /// - Parameters:
    ///   - folder: where journals live; created with mode 0700 if missing.
    ///   - compactionThreshold: the file size in bytes past which a journal holding more removed
    ///     messages than live ones is rewritten. Default 64 MiB. A journal whose messages are all
    ///     gone is emptied whatever its size.
    public init(name: String, folder: URL, compactionThreshold: Int = 64 << 20) throws {
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw JournalError(.io, path: folder.path, "cannot create the journal folder: \(error.localizedDescription)",
                               hint: "create it, or point DEPOT_JOURNAL_DIR at a writable folder")
        }
        self.name = name
        fileURL = folder.appendingPathComponent(Self.fileName(for: name))
        let (journal, records) = try JournalFile.open(path: fileURL.path, store: name, compactionThreshold: compactionThreshold)
        let (messages, keys) = Self.replay(records)
        self.journal = journal
        memory = MemoryStore(name: name, restoring: messages, keys: keys)
    }

    /// The journal's file name for store `name`: every byte outside `A-Z a-z 0-9 . _ -` is
    /// percent-encoded (`%2F` for `/`), so each store name has a file of its own.
    public static func fileName(for name: String) -> String {
        var safe = ""
        for byte in name.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                safe.unicodeScalars.append(UnicodeScalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                safe += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return safe + ".journal"
    }

    /// The live messages in arrival order, and the idempotency keys seen, after `records`.
    static func replay(_ records: [JournalRecord]) -> (messages: [Message], keys: [String: UUID]) {
        var live: [UUID: (arrival: Int, message: Message)] = [:]
        var keys: [String: UUID] = [:]
        var arrival = 0
        for record in records {
            switch record {
            case .put(let messages):
                for message in messages {
                    live[message.id] = (arrival, message)
                    arrival += 1
                    if let key = message.idempotencyKey, keys[key] == nil { keys[key] = message.id }
                }
            case .remove(let ids):
                ids.forEach { live[$0] = nil }
            }
        }
        return (live.values.sorted { $0.arrival < $1.arrival }.map(\.message), keys)
    }

    /// Writes what is queued, closes the file and releases its lock. Later changes throw.
    public func close() async {
        await journal.close()
    }

    // MARK: - MessageStore

    public func store(_ message: OutgoingMessage) async throws -> StoreReceipt {
        try await store([message])[0]
    }

    public func store(_ messages: [OutgoingMessage]) async throws -> [StoreReceipt] {
        let journal = journal
        let (receipts, write) = await memory.store(messages) { created in
            created.isEmpty ? nil : journal.append([.put(created)])
        }
        do {
            try await write?.wait()
        } catch {
            // Not on disk, so not stored: take the messages out of line again.
            await memory.forget(receipts.filter(\.created).map(\.id))
            throw error
        }
        return receipts
    }

    public func claim(limit: Int, consumer: String, lease: Duration) async throws -> [Message] {
        try await memory.claim(limit: limit, consumer: consumer, lease: lease)
    }

    public func claimHead(consumer: String, lease: Duration) async throws -> Message? {
        try await memory.claimHead(consumer: consumer, lease: lease)
    }

    @discardableResult
    public func ack(_ ids: [UUID], consumer: String) async throws -> Int {
        let (count, write) = await memory.ack(ids, consumer: consumer, logging: logRemoval)
        try await write?.wait()
        return count
    }

    @discardableResult
    public func release(_ id: UUID, consumer: String, retryAt: Date, error: String?) async throws -> Bool {
        try await memory.release(id, consumer: consumer, retryAt: retryAt, error: error)
    }

    @discardableResult
    public func giveBack(_ ids: [UUID], consumer: String) async throws -> Int {
        try await memory.giveBack(ids, consumer: consumer)
    }

    @discardableResult
    public func extendLeases(_ ids: [UUID], consumer: String, lease: Duration) async throws -> Int {
        try await memory.extendLeases(ids, consumer: consumer, lease: lease)
    }

    @discardableResult
    public func deadLetter(_ id: UUID, consumer: String, reason: DeadLetterReason) async throws -> Bool {
        let (moved, write) = await memory.deadLetter(id, consumer: consumer, reason: reason, logging: logRemoval)
        try await write?.wait()
        return moved
    }

    public func counts() async throws -> StoreCounts {
        try await memory.counts()
    }

    public func peek(limit: Int) async throws -> [Message] {
        try await memory.peek(limit: limit)
    }

    @discardableResult
    public func purge() async throws -> Int {
        let (count, write) = await memory.purge(logging: logRemoval)
        try await write?.wait()
        return count
    }

    /// The dead letters with their reasons, oldest message first. Kept in memory only.
    public func deadLetterEntries() async -> [(message: Message, reason: DeadLetterReason)] {
        await memory.deadLetterEntries()
    }

    /// Queues a remove record for ids that left, inside the memory store's actor (so in order).
    private var logRemoval: @Sendable ([UUID]) -> JournalFile.Write? {
        { [journal] ids in ids.isEmpty ? nil : journal.append([.remove(ids)]) }
    }
}
