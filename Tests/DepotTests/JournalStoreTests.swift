import Depot
import Foundation
import Postgres
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The journal store's durability: reopen, torn tails, damage, locking, compaction, group commit, kill -9.
@Suite("Journal store")
struct JournalStoreTests {
    @Test("1,000 messages come back after a reopen: same ids, fields and delivery order")
    func reopenKeepsEverything() async throws {
        try await withJournalFolder { folder in
            let sent = mixedMessages(count: 1000)
            let store = try JournalStore(name: "failover", folder: folder)
            var receipts: [StoreReceipt] = []
            for start in stride(from: 0, to: 900, by: 20) { receipts += try await store.store(Array(sent[start..<(start + 20)])) }
            for message in sent[900...] { receipts.append(try await store.store(message)) }
            let before = try await store.peek(limit: 2000)
            let countsBefore = try await store.counts()
            await store.close()

            let reopened = try JournalStore(name: "failover", folder: folder)
            let after = try await reopened.peek(limit: 2000)
            #expect(after.count == Set(receipts.map(\.id)).count)
            #expect(after == before, "peek after the reopen differs from before it")
            #expect(try await reopened.counts() == countsBefore)

            // Same delivery order as a memory store fed the same messages, by repeated claim and ack.
            let reference = MemoryStore(name: "reference")
            _ = try await reference.store(sent)
            #expect(try await drainInOrder(reopened) == (try await drainInOrder(reference)))

            // Given ids are kept; idempotency keys are remembered across the reopen, even after delivery.
            #expect(sent[17].id != nil && receipts[17].id == sent[17].id)
            var retry = sent[4]
            retry.payload = Data("retried".utf8)
            let again = try await reopened.store(retry)
            #expect(again == StoreReceipt(id: receipts[4].id, created: false))
            await reopened.close()
        }
    }

    @Test("acked, dead-lettered, moved and purged messages do not come back after a reopen")
    func removedMessagesStayGone() async throws {
        try await withJournalFolder { folder in
            let store = try JournalStore(name: "s", folder: folder)
            let ids = try await store.store((0..<10).map { OutgoingMessage(text: "m\($0)") }).map(\.id)
            let claimed = try await store.claim(limit: 10, consumer: "c", lease: .seconds(60))
            #expect(claimed.map(\.id) == ids)
            #expect(try await store.ack(Array(ids[0..<3]), consumer: "c") == 3)
            #expect(try await store.deadLetter(ids[3], consumer: "c", reason: DeadLetterReason("poison")))
            #expect(try await store.deadLetter(ids[4], consumer: "c", reason: DeadLetterReason("poison")))
            let target = MemoryStore(name: "target")
            #expect(try await store.move(claimed[5], consumer: "c", to: target))
            #expect(try await store.move(claimed[6], consumer: "c", to: target))
            // A release for later is not durable: after the reopen the message is ready again.
            #expect(try await store.release(ids[7], consumer: "c", retryAt: Date().addingTimeInterval(3600), error: "HTTP 503"))
            await store.close()

            let reopened = try JournalStore(name: "s", folder: folder)
            #expect(try await reopened.peek(limit: 20).map(\.id) == Array(ids[7...]))
            #expect(try await reopened.counts() == StoreCounts(ready: 3))
            let again = try await reopened.claim(limit: 10, consumer: "d", lease: .seconds(60))
            #expect(again.map(\.attempts) == [1, 1, 1], "attempts are not durable; a reopened message starts afresh")
            #expect(try await reopened.purge() == 3)
            await reopened.close()

            let purged = try JournalStore(name: "s", folder: folder)
            #expect(try await purged.counts().total == 0)
            await purged.close()
        }
    }

    @Test("a torn tail is cut off on reopen: garbage or zeros after the last record, a half-written record, a bad checksum at the end")
    func tornTailIsCutOff() async throws {
        try await withJournalFolder { folder in
            let store = try JournalStore(name: "torn", folder: folder)
            var ids: [UUID] = []
            var boundaries: [Int] = []
            for index in 0..<5 {
                ids.append(try await store.store(OutgoingMessage(text: "record \(index) " + String(repeating: "x", count: 100))).id)
                boundaries.append(try fileSize(store.fileURL))
            }
            await store.close()
            let path = store.fileURL

            // Garbage after the last whole record: all five kept, the garbage gone.
            try append(Data("garbage that is not a record".utf8), to: path)
            try await expectReopen(path, folder: folder, holds: ids, fileSize: boundaries[4])

            // Zeros after the last record, as a crash can leave when the file grew but its data did not land.
            try append(Data(count: 4096), to: path)
            try await expectReopen(path, folder: folder, holds: ids, fileSize: boundaries[4])

            // The last record cut half way: four kept.
            try truncate(path, to: boundaries[4] - (boundaries[4] - boundaries[3]) / 2)
            try await expectReopen(path, folder: folder, holds: Array(ids[0..<4]), fileSize: boundaries[3])

            // The last record whole in length but failing its checksum: dropped too.
            try flipByte(in: path, at: boundaries[3] - 3)
            try await expectReopen(path, folder: folder, holds: Array(ids[0..<3]), fileSize: boundaries[2])

            // New records follow the whole ones, and read back.
            let reopened = try JournalStore(name: "torn", folder: folder)
            let later = try await reopened.store(OutgoingMessage(text: "after the repair")).id
            await reopened.close()
            try await expectReopen(path, folder: folder, holds: Array(ids[0..<3]) + [later], fileSize: nil)
        }
    }

    @Test("a damaged record with more records after it is a clear error naming the file and offset")
    func corruptRecordInTheMiddle() async throws {
        try await withJournalFolder { folder in
            let store = try JournalStore(name: "damaged", folder: folder)
            for index in 0..<3 { _ = try await store.store(OutgoingMessage(text: "m\(index)")) }
            await store.close()
            try flipByte(in: store.fileURL, at: 20)
            do {
                _ = try JournalStore(name: "damaged", folder: folder)
                Issue.record("a journal with a damaged record in the middle opened without an error")
            } catch let error as JournalError {
                #expect(error.code == .corrupt)
                #expect(error.description.contains(store.fileURL.path))
                #expect(error.description.contains("byte offset 0"))
                #expect(error.description.contains("move the file aside"))
            }
            // Nothing was cut off: the damaged file is left for the operator.
            #expect(try fileSize(store.fileURL) > 0)
        }
    }

    @Test("a folder that cannot be created is a clear error naming it")
    func unusableFolderIsAClearError() async throws {
        try await withJournalFolder { folder in
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let inTheWay = folder.appendingPathComponent("a-file")
            try Data("not a folder".utf8).write(to: inTheWay)
            do {
                _ = try JournalStore(name: "s", folder: inTheWay.appendingPathComponent("journal"))
                Issue.record("a journal opened in a folder under a regular file")
            } catch let error as JournalError {
                #expect(error.code == .io)
                #expect(error.description.contains(inTheWay.appendingPathComponent("journal").path))
                #expect(error.hint?.contains("DEPOT_JOURNAL_DIR") == true)
            }
        }
    }

    @Test("a second open of the same journal is refused until the first closes")
    func secondOpenIsRefused() async throws {
        try await withJournalFolder { folder in
            let first = try JournalStore(name: "orders", folder: folder)
            do {
                _ = try JournalStore(name: "orders", folder: folder)
                Issue.record("a second JournalStore opened a journal that is already open")
            } catch let error as StoreError {
                #expect(error.code == .invalidArgument)
                #expect(error.message == "journal \(first.fileURL.path) is already open in another process")
                #expect(error.hint != nil)
            }
            await first.close()
            let second = try JournalStore(name: "orders", folder: folder)
            await second.close()
        }
    }

    @Test("a second process cannot open a journal this process holds")
    func otherProcessIsRefused() async throws {
        try await withJournalFolder { folder in
            let store = try JournalStore(name: "held", folder: folder)
            let child = try ChildProcess(testBinary.path, ["--testing-library", "swift-testing", "--filter", "journalChildOpens"],
                                         environment: ["DEPOT_JOURNAL_CHILD_DIR": folder.path, "DEPOT_JOURNAL_CHILD_STORE": "held"])
            defer { child.cleanUp() }
            #expect(await child.wait() != 0, "the child opened a journal this process holds")
            let said = try String(contentsOf: folder.appendingPathComponent("child.out"), encoding: .utf8)
            #expect(said.contains("is already open in another process"), "the child said: \(said)")
            await store.close()
        }
    }

    @Test("once every message is gone the file is emptied")
    func drainedJournalIsEmptied() async throws {
        try await withJournalFolder { folder in
            let store = try JournalStore(name: "drain", folder: folder)
            _ = try await store.store((0..<100).map { OutgoingMessage(text: "m\($0)") })
            let claimed = try await store.claim(limit: 100, consumer: "c", lease: .seconds(60))
            #expect(try await store.ack(Array(claimed.map(\.id)[0..<50]), consumer: "c") == 50)
            #expect(try fileSize(store.fileURL) > 0)
            #expect(try await store.ack(Array(claimed.map(\.id)[50...]), consumer: "c") == 50)
            await store.close()  // waits for the commit, and the compaction after it
            #expect(try fileSize(store.fileURL) == 0)
            let reopened = try JournalStore(name: "drain", folder: folder)
            #expect(try await reopened.counts().total == 0)
            await reopened.close()
        }
    }

    @Test("rewrite compaction keeps the live messages, in order, and shrinks the file")
    func rewriteKeepsLiveMessagesInOrder() async throws {
        try await withJournalFolder { folder in
            let store = try JournalStore(name: "big", folder: folder, compactionThreshold: 8 << 10)
            let sent = (0..<300).map { index in
                var message = OutgoingMessage(text: "m\(index) " + String(repeating: "p", count: 200))
                message.priority = index % 3
                return message
            }
            for start in stride(from: 0, to: 300, by: 10) { _ = try await store.store(Array(sent[start..<(start + 10)])) }
            let grown = try fileSize(store.fileURL)
            // Ack nine in ten, one call each, in delivery order: batches end up partly live.
            let leased = try await store.claim(limit: 300, consumer: "c", lease: .seconds(60))
            #expect(leased.count == 300)
            let kept = leased.enumerated().filter { $0.offset % 10 == 4 }.map(\.element.id)
            for message in leased where !kept.contains(message.id) {
                #expect(try await store.ack([message.id], consumer: "c") == 1)
            }
            #expect(try await store.giveBack(kept, consumer: "c") == 30)
            let expected = try await store.peek(limit: 300)
            #expect(expected.map(\.id) == kept)
            await store.close()
            let compacted = try fileSize(store.fileURL)
            #expect(compacted < grown / 4, "the journal is \(compacted) bytes after compaction, \(grown) before")
            #expect(!FileManager.default.fileExists(atPath: store.fileURL.path + ".compacting"))

            let reopened = try JournalStore(name: "big", folder: folder, compactionThreshold: 8 << 10)
            let after = try await reopened.peek(limit: 300)
            #expect(after.map(\.id) == kept)
            #expect(after.map(\.payload) == expected.map(\.payload) && after.map(\.createdAt) == expected.map(\.createdAt))
            let newer = try await reopened.store(OutgoingMessage(text: "newest")).id
            await reopened.close()
            let again = try JournalStore(name: "big", folder: folder)
            #expect(try await again.peek(limit: 300).map(\.id) == expected.map(\.id) + [newer])
            await again.close()
        }
    }

    @Test("50 concurrent producers share commits, and every message is there after a reopen")
    func concurrentStoresAreAllDurable() async throws {
        try await withJournalFolder { folder in
            let store = try JournalStore(name: "busy", folder: folder)
            let ids = try await withThrowingTaskGroup(of: [UUID].self) { group in
                for task in 0..<50 {
                    group.addTask {
                        var ids: [UUID] = []
                        for index in 0..<4 { ids.append(try await store.store(OutgoingMessage(text: "t\(task)-\(index)")).id) }
                        return ids
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(Set(ids).count == 200)
            await store.close()
            let reopened = try JournalStore(name: "busy", folder: folder)
            #expect(Set(try await reopened.peek(limit: 500).map(\.id)) == Set(ids))
            await reopened.close()
        }
    }

    @Test("store names map to distinct, file-safe journal names")
    func fileNamesAreSafeAndDistinct() {
        #expect(JournalStore.fileName(for: "orders-2024_v1.x") == "orders-2024_v1.x.journal")
        #expect(JournalStore.fileName(for: "a/b") == "a%2Fb.journal")
        #expect(JournalStore.fileName(for: "a%2Fb") == "a%252Fb.journal")
        #expect(JournalStore.fileName(for: "żółw 🐢") == "%C5%BC%C3%B3%C5%82w%20%F0%9F%90%A2.journal")
        let names = ["a/b", "a%2Fb", "a b", "a_b", "../x", "..", ".", "", "A", "a"]
        #expect(Set(names.map(JournalStore.fileName(for:))).count == names.count)
        #expect(names.allSatisfy { !JournalStore.fileName(for: $0).contains("/") })
    }

    @Test("a StoreDirectory serves journal stores, one per name, in its journal folder")
    func directoryServesJournals() async throws {
        try await withJournalFolder { folder in
            let directory = StoreDirectory(pool: ConnectionPool(ConnectionConfiguration("postgres://127.0.0.1:1/none"), maximumConnections: 1),
                                           journalFolder: folder)
            let first = try directory.store(named: "failover/eu", kind: .journal)
            let second = try directory.store(named: "failover/eu", kind: .journal)
            #expect((first as? JournalStore) != nil && (first as? JournalStore) === (second as? JournalStore))
            _ = try await first.store(OutgoingMessage(text: "held"))
            #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("failover%2Feu.journal").path))
            await (first as? JournalStore)?.close()
            #expect(StoreDirectory(pool: ConnectionPool(maximumConnections: 1)).journalFolder == StoreDirectory.defaultJournalFolder)
        }
    }

    @Test("kill -9 of a process writing to a journal: every store and ack it reported survives")
    func killNineKeepsWhatWasReported() async throws {
        try await withJournalFolder { folder in
            let child = try ChildProcess(testBinary.path, ["--testing-library", "swift-testing", "--filter", "journalChildWritesUntilKilled"],
                                         environment: ["DEPOT_JOURNAL_CHILD_DIR": folder.path, "DEPOT_JOURNAL_CHILD_STORE": "crash"])
            defer { child.signal(SIGKILL); child.cleanUp() }
            let progress = folder.appendingPathComponent("child.out")
            let busy = try await eventually(timeout: .seconds(60)) { ChildReport(progress).acked.count >= 100 }
            #expect(busy, "the child never got going: \(child.stderr.suffix(500))")
            child.signal(SIGKILL)
            #expect(await child.wait() == 128 + SIGKILL)

            let report = ChildReport(progress)
            let store = try JournalStore(name: "crash", folder: folder)
            let present = Set(try await store.peek(limit: 1_000_000).map(\.id))
            await store.close()
            let lost = report.stored.subtracting(report.acking).subtracting(present)
            #expect(lost.isEmpty, "\(lost.count) of \(report.stored.count) reported stores were lost")
            let revived = report.acked.intersection(present)
            #expect(revived.isEmpty, "\(revived.count) of \(report.acked.count) reported acks came back")
            // Besides what was reported, at most the writers' in-flight stores (one each) survived.
            let unreported = present.subtracting(report.stored).subtracting(report.acking)
            #expect(unreported.count <= ChildReport.writers, "\(unreported.count) messages nobody reported storing")
        }
    }

    // MARK: - Child processes (the test binary itself, run with a filter)

    /// Writes to a journal from `ChildReport.writers` tasks until killed, logging each store once it
    /// returned and each ack before and after. Runs only as the child of `killNineKeepsWhatWasReported`.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["DEPOT_JOURNAL_CHILD_DIR"] != nil))
    func journalChildWritesUntilKilled() async throws {
        let environment = ProcessInfo.processInfo.environment
        let folder = URL(fileURLWithPath: environment["DEPOT_JOURNAL_CHILD_DIR"]!)
        let store = try JournalStore(name: environment["DEPOT_JOURNAL_CHILD_STORE"]!, folder: folder)
        let log = try ChildLog(folder.appendingPathComponent("child.out"))
        let deadline = ContinuousClock.now + .seconds(60)  // the parent kills it long before
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<ChildReport.writers {
                group.addTask {
                    var index = 0
                    while ContinuousClock.now < deadline {
                        let id = try await store.store(OutgoingMessage(text: "w\(writer)-\(index)")).id
                        log.write("stored \(id)")
                        if index % 2 == 1, let taken = try await store.claim(limit: 1, consumer: "w\(writer)", lease: .seconds(600)).first {
                            log.write("acking \(taken.id)")
                            try await store.ack([taken.id], consumer: "w\(writer)")
                            log.write("acked \(taken.id)")
                        }
                        index += 1
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Tries to open a journal and writes the error it got. Runs only as the child of `otherProcessIsRefused`.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["DEPOT_JOURNAL_CHILD_DIR"] != nil))
    func journalChildOpens() throws {
        let environment = ProcessInfo.processInfo.environment
        let folder = URL(fileURLWithPath: environment["DEPOT_JOURNAL_CHILD_DIR"]!)
        let log = try ChildLog(folder.appendingPathComponent("child.out"))
        do {
            _ = try JournalStore(name: environment["DEPOT_JOURNAL_CHILD_STORE"]!, folder: folder)
            log.write("opened")
        } catch {
            log.write("\(error)")
            throw error
        }
    }
}

// MARK: - Helpers

/// Runs `body` with a fresh folder for journals, and removes the folder afterwards.
func withJournalFolder(_ body: (URL) async throws -> Void) async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("depot-journal-\(UUID().uuidString.prefix(8))", isDirectory: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    try await body(folder)
}

/// Messages with every field a journal must keep: priorities, groups, keys, headers, delays, given ids.
private func mixedMessages(count: Int) -> [OutgoingMessage] {
    (0..<count).map { index in
        var message = OutgoingMessage(payload: Data("message \(index)".utf8), headers: ["index": "\(index)"],
                                      contentType: index % 2 == 0 ? "text/plain" : nil)
        message.priority = [0, 0, 0, 1, 5, -2][index % 6]
        if index % 5 == 0 { message.groupKey = "group-\(index % 3)" }
        if index % 4 == 0 { message.idempotencyKey = "key-\(index)" }
        if index % 13 == 0 { message.delay = .seconds(3600) }
        if index % 17 == 0 { message.id = UUID() }
        return message
    }
}

/// Payloads in the order repeated `claim(limit: 1)` and ack hand them out.
private func drainInOrder(_ store: any MessageStore) async throws -> [String] {
    var order: [String] = []
    while let next = try await store.claim(limit: 1, consumer: "drain", lease: .seconds(60)).first {
        order.append(String(decoding: next.payload, as: UTF8.self))
        try await store.ack([next.id], consumer: "drain")
    }
    return order
}

/// Reopens the journal at `path` and checks it holds exactly `ids`, in order, and has `fileSize` bytes.
private func expectReopen(_ path: URL, folder: URL, holds ids: [UUID], fileSize size: Int?,
                          sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let name = String(path.deletingPathExtension().lastPathComponent)
    let store = try JournalStore(name: name, folder: folder)
    #expect(try await store.peek(limit: 100).map(\.id) == ids, sourceLocation: sourceLocation)
    await store.close()
    if let size { #expect(try fileSize(path) == size, sourceLocation: sourceLocation) }
}

private func fileSize(_ url: URL) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? -1
}

private func append(_ data: Data, to url: URL) throws {
    let handle = try FileHandle(forWritingTo: url)
    defer { try? handle.close() }
    try handle.seekToEnd()
    try handle.write(contentsOf: data)
}

private func truncate(_ url: URL, to size: Int) throws {
    let handle = try FileHandle(forWritingTo: url)
    defer { try? handle.close() }
    try handle.truncate(atOffset: UInt64(size))
}

private func flipByte(in url: URL, at offset: Int) throws {
    let handle = try FileHandle(forUpdating: url)
    defer { try? handle.close() }
    try handle.seek(toOffset: UInt64(offset))
    let byte = try handle.read(upToCount: 1) ?? Data([0])
    try handle.seek(toOffset: UInt64(offset))
    try handle.write(contentsOf: Data([byte[byte.startIndex] ^ 0xFF]))
}

/// The test binary, run again as a child process with `--filter`.
private var testBinary: URL { URL(fileURLWithPath: CommandLine.arguments[0]) }

/// Lines a child process appends to a file of its own, one `write` each (its stdout carries the test runner's output).
private final class ChildLog: Sendable {
    let descriptor: Int32

    init(_ url: URL) throws {
        descriptor = open(url.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    func write(_ line: String) {
        writeAll(descriptor, Array((line + "\n").utf8))
    }
}

/// What the child process said it did, read from its log (a torn last line is ignored).
private struct ChildReport {
    static let writers = 4
    var stored: Set<UUID> = []
    var acking: Set<UUID> = []
    var acked: Set<UUID> = []

    init(_ url: URL) {
        let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let id = UUID(uuidString: String(parts[1])) else { continue }
            switch parts[0] {
            case "stored": stored.insert(id)
            case "acking": acking.insert(id)
            case "acked": acked.insert(id)
            default: continue
            }
        }
    }
}

/// One `write(2)` of `bytes` (a file-scope function: inside `ChildLog`, `write` names its method).
private func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) {
    _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
}
