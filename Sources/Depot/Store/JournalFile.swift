import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A store's journal on disk: checksummed records appended with group commit, read back on open,
/// compacted when it is mostly dead. The file format and its I/O, nothing about message semantics.
///
/// Frame: body length u32, CRC-32 of the body u32 (both little-endian), then the body
/// (`JournalRecord`). All file I/O runs on one serial queue per journal, never on the Swift
/// cooperative pool: callers queue records and await their `Write`, and whatever queued while
/// the previous fsync ran goes out in the next single write + fsync (group commit).
final class JournalFile: @unchecked Sendable {
    /// The journal file's path.
    let path: String
    private let store: String
    private let compactionThreshold: Int
    private let queue: DispatchQueue
    private var lockDescriptor: Int32

    // Guarded by `lock`: records waiting for the next commit.
    private let lock = NSLock()
    private var pending: [(records: [JournalRecord], write: Write)] = []
    private var drainScheduled = false
    private var closed = false

    // Touched only on `queue` (and by `open`, before anyone else sees the journal).
    private var descriptor: Int32
    /// Bytes of whole, fsync'd records; the next commit writes here.
    private var end: Int
    /// Where each live message's put record starts.
    private var liveIDs: [UUID: Int] = [:]
    /// Put records still holding live messages, by offset: their frame length and how many live.
    private var liveRecords: [Int: (length: Int, live: Int)] = [:]
    /// Messages removed since the file was last emptied or rewritten.
    private var removedSinceCompaction = 0
    /// Set when a failed write could not be undone; every later commit fails with it.
    private var broken: JournalError?

    private static let headerLength = 8

    private init(path: String, store: String, compactionThreshold: Int, descriptor: Int32, lockDescriptor: Int32, end: Int) {
        self.path = path
        self.store = store
        self.compactionThreshold = compactionThreshold
        self.descriptor = descriptor
        self.lockDescriptor = lockDescriptor
        self.end = end
        queue = DispatchQueue(label: "depot.journal.\(store)")
    }

    deinit {
        if descriptor >= 0 { FileIO.close(descriptor) }
        if lockDescriptor >= 0 { FileIO.close(lockDescriptor) }
    }

    // MARK: - Opening

    /// Opens (creating) the journal at `path`, takes its lock, and reads its records in order.
    /// A torn last record is cut off with a warning; damage before the end throws `.corrupt`.
    /// - Parameters:
    ///   - store: the name messages read back carry.
    ///   - compactionThreshold: the size past which a mostly dead file is rewritten.
    static func open(path: String, store: String, compactionThreshold: Int) throws -> (JournalFile, [JournalRecord]) {
        let lockDescriptor = try takeLock(path + ".lock", journal: path)
        var descriptor: Int32 = -1
        do {
            // A compaction that crashed before its rename left this; the journal itself is whole.
            unlink(path + ".compacting")
            descriptor = FileIO.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else { throw JournalError.system("open", path: path) }
            try FileIO.syncFolder(of: path)
            let bytes = try FileIO.readAll(descriptor, path: path)
            let scan = try scan(bytes, path: path, store: store)
            if scan.validLength < bytes.count {
                guard ftruncate(descriptor, off_t(scan.validLength)) == 0 else { throw JournalError.system("ftruncate", path: path) }
                guard fsync(descriptor) == 0 else { throw JournalError.system("fsync", path: path) }
                warn("journal \(path): cut off \(bytes.count - scan.validLength) bytes of a torn record at byte \(scan.validLength), "
                     + "left by an interrupted write; the \(scan.records.count) complete records before it are kept")
            }
            let journal = JournalFile(path: path, store: store, compactionThreshold: compactionThreshold,
                                      descriptor: descriptor, lockDescriptor: lockDescriptor, end: scan.validLength)
            for entry in scan.records { journal.track(entry.record, at: entry.offset, length: entry.length) }
            return (journal, scan.records.map(\.record))
        } catch {
            if descriptor >= 0 { FileIO.close(descriptor) }
            FileIO.close(lockDescriptor)
            throw error
        }
    }

    /// An exclusive `flock` on the lock file beside the journal (not on the journal itself, which
    /// compaction replaces), held until the journal closes or the process dies.
    private static func takeLock(_ lockPath: String, journal path: String) throws -> Int32 {
        let descriptor = FileIO.open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw JournalError.system("open", path: lockPath) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let number = errno
            FileIO.close(descriptor)
            guard number == EWOULDBLOCK else { throw JournalError.system("flock", path: lockPath, errno: number) }
            throw StoreError(.invalidArgument, "journal \(path) is already open in another process",
                             hint: "stop the other depot process (or close the other JournalStore in this one), "
                                 + "or give this process its own folder with DEPOT_JOURNAL_DIR")
        }
        return descriptor
    }

    /// The records in `bytes` and the length of the whole-record prefix. The last frame may be
    /// torn (short, failing its checksum, or zeros where a crash left a file longer than its data);
    /// a bad frame with real data after it is damage, and throws.
    static func scan(_ bytes: Data, path: String, store: String) throws
        -> (records: [(offset: Int, length: Int, record: JournalRecord)], validLength: Int) {
        var records: [(offset: Int, length: Int, record: JournalRecord)] = []
        var offset = 0
        func isTornTail(frameEnd: Int) -> Bool {
            frameEnd >= bytes.count || bytes[(bytes.startIndex + offset)...].allSatisfy { $0 == 0 }
        }
        while offset < bytes.count {
            guard bytes.count - offset >= headerLength else { return (records, offset) }
            let length = Int(littleEndianUInt32(bytes, at: offset))
            let checksum = littleEndianUInt32(bytes, at: offset + 4)
            let frameEnd = offset + headerLength + length
            if frameEnd > bytes.count { return (records, offset) }
            let body = bytes[(bytes.startIndex + offset + headerLength)..<(bytes.startIndex + frameEnd)]
            let problem: String? = if length == 0 { "an empty record" }
                else if CRC32.checksum(body) != checksum { "a checksum mismatch" }
                else { nil }
            if let problem {
                if isTornTail(frameEnd: frameEnd) { return (records, offset) }
                throw corrupt(path: path, offset: offset, problem, following: bytes.count - frameEnd)
            }
            do {
                records.append((offset, headerLength + length, try JournalRecord(decoding: Data(body), store: store)))
            } catch {
                throw corrupt(path: path, offset: offset, "a record that cannot be read (\(error))", following: bytes.count - frameEnd)
            }
            offset = frameEnd
        }
        return (records, offset)
    }

    private static func corrupt(path: String, offset: Int, _ problem: String, following: Int) -> JournalError {
        JournalError(.corrupt, path: path,
                     "\(problem) at byte offset \(offset), with \(following) more bytes after it: the file is damaged, not just cut short",
                     hint: "stop depot, move the file aside (mv \(Quoting.shell(path)) \(Quoting.shell(path + ".damaged"))) and start again with an empty journal; "
                         + "the records before byte \(offset) can be recovered from the moved file")
    }

    // MARK: - Appending

    /// One caller's records in a group commit: finished once they are written and fsync'd, or failed.
    final class Write: @unchecked Sendable {
        private let lock = NSLock()
        private var result: Result<Void, Error>?
        private var waiter: CheckedContinuation<Void, Error>?

        /// Returns once the records are on disk; throws why they are not.
        func wait() async throws {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                let done: Result<Void, Error>? = lock.withLock {
                    if result == nil { waiter = continuation }
                    return result
                }
                if let done { continuation.resume(with: done) }
            }
        }

        fileprivate func finish(_ outcome: Result<Void, Error>) {
            let waiting: CheckedContinuation<Void, Error>? = lock.withLock {
                guard result == nil else { return nil }
                result = outcome
                defer { waiter = nil }
                return waiter
            }
            waiting?.resume(with: outcome)
        }
    }

    /// Queues `records` for the next commit. Callers queue under their own ordering lock (the
    /// store's), so the file's order is the order changes happened in.
    func append(_ records: [JournalRecord]) -> Write {
        let write = Write()
        let scheduled: Bool? = lock.withLock {
            guard !closed else { return nil }
            pending.append((records, write))
            defer { drainScheduled = true }
            return !drainScheduled
        }
        switch scheduled {
        case nil: write.finish(.failure(JournalError(.unusable, path: path, "the journal is closed")))
        case true?: queue.async { self.drain() }
        case false?: break
        }
        return write
    }

    /// Waits for queued records to be written, then closes the file and releases its lock.
    func close() async {
        let wasClosed = lock.withLock { defer { closed = true }; return closed }
        guard !wasClosed else { return }
        // The queue is serial: a drain scheduled before `closed` was set runs first.
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                if self.descriptor >= 0 { FileIO.close(self.descriptor) }
                FileIO.close(self.lockDescriptor)
                self.descriptor = -1
                self.lockDescriptor = -1
                self.broken = JournalError(.unusable, path: self.path, "the journal is closed")
                continuation.resume()
            }
        }
    }

    /// Commits batches until nothing is pending. Runs on `queue`.
    private func drain() {
        while true {
            let batch: [(records: [JournalRecord], write: Write)] = lock.withLock {
                defer { pending.removeAll() }
                if pending.isEmpty { drainScheduled = false }
                return pending
            }
            if batch.isEmpty { return }
            commit(batch)
        }
    }

    /// One write and one fsync for every record in `batch`; then each caller hears how it went.
    private func commit(_ batch: [(records: [JournalRecord], write: Write)]) {
        if let broken { return batch.forEach { $0.write.finish(.failure(broken)) } }
        var bytes = Data()
        var accepted: [(write: Write, placed: [(offset: Int, length: Int, record: JournalRecord)])] = []
        for (records, write) in batch {
            do {
                var frames = Data()
                var placed: [(offset: Int, length: Int, record: JournalRecord)] = []
                for record in records {
                    let frame = try Self.frame(record.encoded())
                    placed.append((end + bytes.count + frames.count, frame.count, record))
                    frames.append(frame)
                }
                bytes.append(frames)
                accepted.append((write, placed))
            } catch {
                write.finish(.failure(error))
            }
        }
        guard !bytes.isEmpty else { return }
        do {
            try FileIO.writeAll(bytes, to: descriptor, at: end, path: path)
            guard fsync(descriptor) == 0 else { throw JournalError.system("fsync", path: path) }
        } catch {
            let failure = error as? JournalError ?? JournalError(.io, path: path, "\(error)")
            undoPartialWrite(after: failure)
            return accepted.forEach { $0.write.finish(.failure(failure)) }
        }
        end += bytes.count
        for (write, placed) in accepted {
            placed.forEach { track($0.record, at: $0.offset, length: $0.length) }
            write.finish(.success(()))
        }
        compactIfWorthIt()
    }

    /// Cuts off whatever part of a failed commit reached the file, so the next record follows a
    /// whole one; if even that fails, the journal refuses further writes until it is reopened.
    private func undoPartialWrite(after failure: JournalError) {
        guard ftruncate(descriptor, off_t(end)) == 0, fsync(descriptor) == 0 else {
            broken = JournalError(.unusable, path: path,
                                  "a write failed (\(failure.message)) and its partial record could not be cut off",
                                  hint: "restart the process once the disk is healthy: reopening keeps every complete record")
            return
        }
    }

    /// Updates what is live after `record` reached the file at `offset`.
    private func track(_ record: JournalRecord, at offset: Int, length: Int) {
        switch record {
        case .put(let messages):
            liveRecords[offset] = (length, 0)
            for message in messages {
                if let earlier = liveIDs[message.id] { dropLive(at: earlier) }
                liveIDs[message.id] = offset
                liveRecords[offset]!.live += 1
            }
        case .remove(let ids):
            for id in ids {
                guard let at = liveIDs.removeValue(forKey: id) else { continue }
                dropLive(at: at)
                removedSinceCompaction += 1
            }
        }
    }

    private func dropLive(at offset: Int) {
        liveRecords[offset]!.live -= 1
        if liveRecords[offset]!.live == 0 { liveRecords[offset] = nil }
    }

    // MARK: - Compaction

    /// Empties the file when nothing is live; rewrites it when it is past the threshold and holds
    /// more removed messages than live ones. A failed compaction leaves the journal as it was.
    private func compactIfWorthIt() {
        if liveIDs.isEmpty {
            guard end > 0 else { return }
            // Safe even if the fsync fails: every record in the old content is balanced by a remove.
            guard ftruncate(descriptor, 0) == 0 else {
                return Self.warn(JournalError.system("ftruncate (emptying a drained journal)", path: path).description)
            }
            end = 0
            liveRecords = [:]
            removedSinceCompaction = 0
            if fsync(descriptor) != 0 { Self.warn(JournalError.system("fsync (emptying a drained journal)", path: path).description) }
        } else if end > compactionThreshold && removedSinceCompaction > liveIDs.count {
            do { try rewrite() } catch {
                Self.warn("\(error); compaction was skipped and the journal is unchanged")
            }
        }
    }

    /// Copies the live messages, in order, to a new file, fsyncs it and renames it over the journal.
    private func rewrite() throws {
        let temporary = path + ".compacting"
        let fresh = FileIO.open(temporary, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fresh >= 0 else { throw JournalError.system("open", path: temporary) }
        var freshIDs: [UUID: Int] = [:]
        var freshRecords: [Int: (length: Int, live: Int)] = [:]
        var freshEnd = 0
        let idsByRecord = Dictionary(grouping: liveIDs.keys, by: { liveIDs[$0]! })
        do {
            for (offset, entry) in liveRecords.sorted(by: { $0.key < $1.key }) {
                let frame = try FileIO.read(descriptor, at: offset, count: entry.length, path: path)
                var copy = frame
                if entry.live < Self.messageCount(inPutFrame: frame) {
                    guard case .put(let messages) = try JournalRecord(decoding: frame.dropFirst(Self.headerLength), store: store) else {
                        throw JournalError(.corrupt, path: path, "the record at byte offset \(offset) is not a put record")
                    }
                    copy = try Self.frame(JournalRecord.put(messages.filter { liveIDs[$0.id] == offset }).encoded())
                }
                try FileIO.writeAll(copy, to: fresh, at: freshEnd, path: temporary)
                for id in idsByRecord[offset] ?? [] { freshIDs[id] = freshEnd }
                freshRecords[freshEnd] = (copy.count, entry.live)
                freshEnd += copy.count
            }
            guard fsync(fresh) == 0 else { throw JournalError.system("fsync", path: temporary) }
            guard rename(temporary, path) == 0 else { throw JournalError.system("rename over the journal", path: temporary) }
        } catch {
            FileIO.close(fresh)
            unlink(temporary)
            throw error
        }
        FileIO.close(descriptor)
        descriptor = fresh
        end = freshEnd
        liveIDs = freshIDs
        liveRecords = freshRecords
        removedSinceCompaction = 0
        do { try FileIO.syncFolder(of: path) } catch { Self.warn("\(error) after compaction; the journal is whole either way") }
    }

    /// How many messages a put frame holds: the u32 after the kind byte.
    private static func messageCount(inPutFrame frame: Data) -> Int {
        Int(littleEndianUInt32(frame, at: headerLength + 1))
    }

    // MARK: - Framing

    /// `body` with its length and checksum in front.
    static func frame(_ body: Data) throws -> Data {
        guard let length = UInt32(exactly: body.count) else {
            throw StoreError(.invalidArgument, "a journal record of \(body.count) bytes is too large (the limit is 4 GiB)",
                             hint: "store fewer or smaller messages per call")
        }
        var frame = Data(capacity: headerLength + body.count)
        withUnsafeBytes(of: length.littleEndian) { frame.append(contentsOf: $0) }
        withUnsafeBytes(of: CRC32.checksum(body).littleEndian) { frame.append(contentsOf: $0) }
        frame.append(body)
        return frame
    }

    private static func littleEndianUInt32(_ bytes: Data, at offset: Int) -> UInt32 {
        let start = bytes.startIndex + offset
        return bytes[start..<(start + 4)].reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }

    private static func warn(_ message: String) {
        FileHandle.standardError.write(Data("depot: warning: \(message)\n".utf8))
    }
}
