import Foundation
import Postgres
import Synchronization
import Testing
import TestSupport

/// Statements from threads marked `BlockingThread` (an HTTP connection's): they run on the
/// caller's thread, with no hop to the connection's, and a deadline bounds how long they wait.
@Suite("Statements on threads that may block")
struct BlockingThreadTests {
    @Test("on a marked thread a statement runs there: its task has finished when Task.immediate returns; on an unmarked one it has not")
    func runsOnTheCallersThread() async throws {
        let connection = try await TestDatabase.connect()
        defer { connection.close() }
        // pg_sleep: the unmarked thread's task cannot have finished in the moment Task.immediate takes to return.
        let marked = try await Self.onThread(marked: true) { try await connection.query("SELECT pg_sleep(0.05)") }
        let unmarked = try await Self.onThread(marked: false) { try await connection.query("SELECT pg_sleep(0.05)") }
        #expect(marked.finishedInPlace)
        #expect(!unmarked.finishedInPlace)
        #expect(marked.error == nil && unmarked.error == nil)
    }

    @Test("a deadline on a marked thread: a statement that outlasts it fails as a lost connection soon after, and the connection is not reused")
    func deadlineEndsTheWait() async throws {
        let connection = try await TestDatabase.connect()
        defer { connection.close() }
        let started = ContinuousClock.now
        let outcome = try await Self.onThread(marked: true, deadline: .milliseconds(200)) { try await connection.query("SELECT pg_sleep(5)") }
        let waited = ContinuousClock.now - started
        let error = try #require(outcome.error as? PostgresError)
        #expect(error.isConnectionLoss, "\(error)")
        #expect(error.message.contains("deadline"))
        #expect(waited >= .milliseconds(200) && waited < .seconds(3), "waited \(waited)")
        #expect(connection.isBroken)
    }

    @Test("within a deadline, a marked thread gets the statement's rows, and a server error with its SQLSTATE")
    func deadlineKeepsResults() async throws {
        let connection = try await TestDatabase.connect()
        defer { connection.close() }
        let rows = Mutex<Int?>(nil)
        let answered = try await Self.onThread(marked: true, deadline: .seconds(10)) {
            let value = try await connection.query("SELECT 41 + 1").first?.decode(at: 0, as: Int.self)
            rows.withLock { $0 = value }
        }
        #expect(answered.error == nil && answered.finishedInPlace)
        #expect(rows.withLock { $0 } == 42)
        let failed = try await Self.onThread(marked: true, deadline: .seconds(10)) { try await connection.query("SELECT 1 / 0") }
        #expect((failed.error as? PostgresError)?.sqlState == SQLState("22012"))
        #expect(!connection.isBroken, "a statement's error leaves the connection usable")
    }

    struct Outcome: Sendable {
        /// Whether the task had finished when `Task.immediate` returned to the thread.
        let finishedInPlace: Bool
        let error: (any Error)?
    }

    /// Starts `work` with `Task.immediate` on a new thread (marked or not, with a deadline or
    /// not), waits for it to finish, and says whether it finished before `Task.immediate` returned.
    static func onThread(marked: Bool, deadline: Duration? = nil, _ work: @escaping @Sendable () async throws -> Void) async throws -> Outcome {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                if marked { BlockingThread.allowOnCurrentThread() }
                let run = Run(work)
                if let deadline { BlockingThread.withDeadline(.now + deadline) { run.start() } } else { run.start() }
                let inPlace = run.isDone
                continuation.resume(returning: Outcome(finishedInPlace: inPlace, error: run.waitForError()))
            }
            thread.start()
        }
    }

    /// One run of `work` in a task started with `Task.immediate`.
    private final class Run: @unchecked Sendable {
        private let work: @Sendable () async throws -> Void
        private let lock = NSLock()
        private let finished = DispatchSemaphore(value: 0)
        private var done = false
        private var error: (any Error)?

        init(_ work: @escaping @Sendable () async throws -> Void) { self.work = work }

        func start() {
            _ = Task.immediate { [self] in
                var failure: (any Error)?
                do { try await work() } catch { failure = error }
                lock.withLock { (done, error) = (true, failure) }
                finished.signal()
            }
        }

        var isDone: Bool { lock.withLock { done } }

        func waitForError() -> (any Error)? {
            finished.wait()
            return lock.withLock { error }
        }
    }
}
