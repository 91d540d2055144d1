import CLibPQ
import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One connection to PostgreSQL.
///
/// libpq calls block, so each connection owns a serial dispatch queue (its own thread) and every
/// libpq call runs there; async callers suspend instead of blocking Swift's cooperative pool.
/// A caller on a thread marked `BlockingThread` (an HTTP connection's) runs them itself instead.
/// A connection serves one caller at a time: borrow it from a `ConnectionPool`, or own it.
public final class Connection: @unchecked Sendable {
    // Every mutable field below is touched only on `queue`. Statements live here, COPY in
    // ConnectionCopy.swift, LISTEN / NOTIFY in ConnectionNotifications.swift.
    private let queue: DispatchQueue
    private var handle: OpaquePointer?
    private var preparedNames: [String: String] = [:]
    /// Starts this connection's statement names. Unique per connection: behind a transaction pool
    /// mistaken for a session (`poolMode` left at `.session`), another client's statement of the
    /// same name must not run in place of ours; the name is then missing instead, which `run` explains.
    private let statementPrefix = "depot_\(String(UInt32.random(in: .min ... .max), radix: 36))_"
    var pendingNotifications: [PostgresNotification] = []
    /// Set once the session holds state a silent reconnect would lose (LISTEN).
    var holdsSessionState = false
    public let configuration: ConnectionConfiguration

    /// At most this many statements are kept prepared per connection; others run unprepared.
    /// In `PoolMode.transaction` none is: a prepared statement lives in one server session.
    static let preparedStatementLimit = 512

    private init(configuration: ConnectionConfiguration, handle: OpaquePointer) {
        self.configuration = configuration
        self.handle = handle
        queue = DispatchQueue(label: "depot.postgres.connection")
    }

    deinit {
        if let handle { PQfinish(handle) }
    }

    /// Opens a connection. Throws a `.connection` error that names the server and never the password.
    public static func connect(_ configuration: ConnectionConfiguration = .fromEnvironment()) async throws -> Connection {
        // A thread of its own: connecting blocks for up to connect_timeout, and Dispatch's global
        // queue runs only about one such job per core, so a few slow connects would stall the rest.
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try openHandle(configuration) })
            }
            thread.name = "depot.postgres.connect"
            thread.start()
        }
    }

    private static func openHandle(_ configuration: ConnectionConfiguration) throws -> Connection {
        // libpq echoes a malformed string (password included) in its message: check it first
        // and report the problem without the string.
        try configuration.validate()
        // Defaults first; the connection string (expanded from "dbname") overrides them.
        let keywords = ["connect_timeout", "fallback_application_name", "dbname"]
        let values = [String(configuration.connectTimeoutSeconds), configuration.applicationName, configuration.connectionString]
        let handle = withCStrings(keywords) { keywordPointers in
            withCStrings(values) { valuePointers in
                PQconnectdbParams(keywordPointers, valuePointers, 1)
            }
        }
        guard let handle else {
            throw PostgresError(kind: .connection, message: "cannot connect to PostgreSQL: libpq could not allocate a connection")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let reason = configuration.redact(oneLine(PQerrorMessage(handle)))
            PQfinish(handle)
            throw PostgresError(kind: .connection, message: "cannot connect to PostgreSQL: \(reason)", hint: connectionHint(for: reason))
        }
        // Server notices (and the FATAL a shutting-down server sends an idle client) are not
        // printed to stderr from a library; errors reach callers as PostgresError instead.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        return Connection(configuration: configuration, handle: handle)
    }

    /// True once the connection is known to be unusable; a pool then discards it.
    public var isBroken: Bool {
        queue.sync { handle == nil || PQstatus(handle) != CONNECTION_OK }
    }

    /// True when the connection works and no transaction is open (or failed) on it: safe to
    /// lend to someone else.
    public var isReusable: Bool {
        queue.sync { handle.map { PQstatus($0) == CONNECTION_OK && PQtransactionStatus($0) == PQTRANS_IDLE } ?? false }
    }

    /// Closes the connection. Later calls throw.
    public func close() {
        queue.sync {
            if let handle { PQfinish(handle) }
            handle = nil
        }
    }

    // MARK: - Statements

    /// Runs one statement and returns its rows (binary format).
    @discardableResult
    public func query(_ sql: SQL) async throws -> Rows {
        try await onQueue { try self.run(sql) }
    }

    /// Runs one statement and returns how many rows it affected.
    @discardableResult
    public func execute(_ sql: SQL) async throws -> Int {
        try await query(sql).affectedRows
    }

    /// Brings the connection back to idle after results this caller will not use: a COPY FROM
    /// STDIN still open is ended as failed (the server rolls it back), a COPY TO STDOUT is read
    /// out, and every result left is cleared.
    func abandonResults(_ handle: OpaquePointer, current: OpaquePointer?) {
        var result = current
        var owned = false
        // Bounded: a text of many statements is drained a few at a time, never spun on forever.
        for _ in 0..<64 {
            if let status = result.map(PQresultStatus) {
                if status == PGRES_COPY_IN {
                    _ = PQputCopyEnd(handle, "abandoned: Connection.copy sends one COPY FROM STDIN only")
                } else if status == PGRES_COPY_OUT {
                    var buffer: UnsafeMutablePointer<CChar>?
                    while PQgetCopyData(handle, &buffer, 0) > 0 { PQfreemem(buffer) }
                }
            }
            if owned { PQclear(result) }
            guard PQstatus(handle) == CONNECTION_OK, let next = PQgetResult(handle) else { return }
            result = next
            owned = true
        }
        if owned { PQclear(result) }
    }

    /// Runs text that may hold several statements and no parameters (a migration file).
    /// The name says "unsafe": the text must come from a trusted place.
    public func executeUnsafeScript(_ text: String) async throws {
        try await onQueue {
            let handle = try self.liveHandle(mayReconnect: true)
            let result = PQexec(handle, text)
            defer { PQclear(result) }
            try self.check(result, query: "(script)")
        }
    }

    /// Runs `body` inside BEGIN … COMMIT; any thrown error rolls back and is rethrown.
    @discardableResult
    public func transaction<T>(_ body: (Connection) async throws -> T) async throws -> T {
        try await execute("BEGIN")
        do {
            let value = try await body(self)
            // A statement that failed inside `body` (its error swallowed) aborts the transaction,
            // and COMMIT then answers ROLLBACK: that is a failure, not a success.
            let tag = try await query("COMMIT").commandTag
            guard tag == "COMMIT" else {
                throw PostgresError(kind: .server, message: "the transaction was rolled back because a statement in it failed")
            }
            return value
        } catch {
            if !isBroken { _ = try? await execute("ROLLBACK") }
            throw error
        }
    }

    // MARK: - Running on the connection's thread

    func onQueue<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        // A caller on a thread that may block (`BlockingThread`) runs the work itself: `sync`
        // on an idle serial queue runs it on the calling thread.
        if BlockingThread.isAllowed { return try queue.sync(execute: work) }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }

    /// Returns the live handle. When the server went away while we were idle (outside a
    /// transaction, nothing sent yet), reconnects once, so a server restart costs no failed statement.
    func liveHandle(mayReconnect: Bool) throws -> OpaquePointer {
        guard let handle else { throw PostgresError(kind: .connection, message: "the connection is closed") }
        if mayReconnect, !holdsSessionState, PQtransactionStatus(handle) == PQTRANS_IDLE, serverHasHungUp(handle) {
            PQreset(handle)
            preparedNames.removeAll()
            pendingNotifications.removeAll()
            guard PQstatus(handle) == CONNECTION_OK else { throw connectionLost(handle) }
        }
        guard PQstatus(handle) == CONNECTION_OK else { throw connectionLost(handle) }
        return handle
    }

    /// True when the socket reports the peer closed it (or an error), checked without waiting.
    private func serverHasHungUp(_ handle: OpaquePointer) -> Bool {
        // Readable while idle means a notification or the server's goodbye (an error message,
        // then end of file). Let libpq read until nothing is left; EOF makes it return 0.
        for _ in 0..<8 {
            if PQstatus(handle) != CONNECTION_OK { return true }
            var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 0) > 0 else { return false }
            if descriptor.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 { return true }
            if PQconsumeInput(handle) == 0 { return true }
            keepNotifications(handle)
        }
        return PQstatus(handle) != CONNECTION_OK
    }

    private func run(_ sql: SQL) throws -> Rows {
        let handle = try liveHandle(mayReconnect: true)
        let bindings = sql.bindings
        let types = bindings.map { Oid($0.type.oid) }
        let lengths = bindings.map { Int32($0.bytes?.count ?? 0) }
        let formats = [Int32](repeating: 1, count: bindings.count)
        let statementName = try preparedName(for: sql, types: types, handle: handle)
        let deadline = BlockingThread.isAllowed ? BlockingThread.deadline : nil
        let result: OpaquePointer? = try withParameterPointers(bindings) { values in
            if let deadline {
                return try awaitResult(handle, until: deadline) {
                    if let statementName {
                        return PQsendQueryPrepared(handle, statementName, Int32(bindings.count), values, lengths, formats, 1)
                    }
                    return PQsendQueryParams(handle, sql.text, Int32(bindings.count), types, values, lengths, formats, 1)
                }
            }
            if let statementName {
                return PQexecPrepared(handle, statementName, Int32(bindings.count), values, lengths, formats, 1)
            }
            return PQexecParams(handle, sql.text, Int32(bindings.count), types, values, lengths, formats, 1)
        }
        do {
            try check(result, query: sql.text)
        } catch var error as PostgresError {
            PQclear(result)
            if statementName != nil, let state = error.sqlState, state == .invalidSQLStatementName || state == .duplicatePreparedStatement {
                Self.explainTransactionPool(&error)
            }
            throw error
        } catch {
            PQclear(result)
            throw error
        }
        return Rows(result: result)
    }

    /// What `PQexec` does, with a limit: sends the statement, then waits for its results no
    /// later than `deadline`. Past it the statement's fate is unknown and the connection is
    /// closed (never lent again), as a caller that stopped waiting for it would leave it.
    /// Returns the statement's result (its error, if one came), nil when the connection failed.
    private func awaitResult(_ handle: OpaquePointer, until deadline: ContinuousClock.Instant, send: () -> Int32) throws -> OpaquePointer? {
        guard send() == 1 else { return nil }
        var kept: OpaquePointer?
        while true {
            while PQisBusy(handle) == 1 {
                let left = deadline - .now
                guard left > .zero else {
                    PQclear(kept)
                    PQfinish(handle)
                    self.handle = nil
                    throw PostgresError(kind: .connection, message: "PostgreSQL did not answer within the caller's deadline; the connection was closed")
                }
                var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
                if poll(&descriptor, 1, Self.pollMillis(left)) > 0, PQconsumeInput(handle) == 0 {
                    PQclear(kept)
                    return nil
                }
            }
            guard let next = PQgetResult(handle) else { return kept }
            let status = PQresultStatus(next)
            if status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH {
                PQclear(kept)
                return next  // not a statement `run` sends; `check` accepts it and the caller abandons it
            }
            // Like PQexec: the last result, unless an earlier one was an error.
            if let kept, PQresultStatus(kept) == PGRES_FATAL_ERROR {
                PQclear(next)
            } else {
                PQclear(kept)
                kept = next
            }
        }
    }

    /// Says why a statement this connection prepared can be missing (or named twice) on its
    /// server, in the message itself: logs show the message, and this is a setting to fix.
    static func explainTransactionPool(_ error: inout PostgresError) {
        error.message += " (the connection's server session changed between statements, as behind PgBouncer in transaction mode)"
        error.hint = "set DEPOT_DATABASE_POOL_MODE=transaction, and DEPOT_LISTEN_DATABASE_URL to a direct connection for nodes"
    }

    /// Prepares a statement the first time its text is seen on this connection; nil (send it
    /// unprepared) behind a transaction pool, or once `preparedStatementLimit` are prepared.
    private func preparedName(for sql: SQL, types: [Oid], handle: OpaquePointer) throws -> String? {
        guard configuration.poolMode == .session else { return nil }
        let key = sql.text + "\u{0}" + types.map(String.init).joined(separator: ",")
        if let name = preparedNames[key] { return name }
        guard preparedNames.count < Self.preparedStatementLimit else { return nil }
        let name = statementPrefix + String(preparedNames.count + 1)
        let result = PQprepare(handle, name, sql.text, Int32(types.count), types)
        defer { PQclear(result) }
        do {
            try check(result, query: sql.text)
        } catch var error as PostgresError where error.sqlState == .duplicatePreparedStatement {
            Self.explainTransactionPool(&error)
            throw error
        }
        preparedNames[key] = name
        return name
    }

    func check(_ result: OpaquePointer?, query: String) throws {
        guard let handle else { throw PostgresError(kind: .connection, message: "the connection is closed") }
        guard let result else { throw connectionLost(handle) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY, PGRES_COPY_IN, PGRES_COPY_OUT:
            return
        default:
            func field(_ code: Character) -> String? {
                guard let value = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
                return String(cString: value)
            }
            guard let state = field("C") else { throw connectionLost(handle) }
            throw PostgresError(
                kind: .server, sqlState: SQLState(state),
                message: configuration.redact(field("M") ?? "unknown server error"),
                detail: field("D").map(configuration.redact), hint: field("H"), query: query)
        }
    }

    func connectionLost(_ handle: OpaquePointer) -> PostgresError {
        let reason = configuration.redact(Self.oneLine(PQerrorMessage(handle)))
        return PostgresError(kind: .connection, message: "lost the connection to PostgreSQL: \(reason.isEmpty ? "no reason given" : reason)")
    }

    // MARK: - Helpers

    /// `duration` as poll(2)'s timeout, rounded up to the millisecond: a wait for a deadline
    /// never ends just before it.
    static func pollMillis(_ duration: Duration) -> Int32 {
        let (seconds, attoseconds) = duration.components
        guard seconds < Int64(Int32.max / 1000) else { return Int32.max }
        return Int32(clamping: max(0, seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000))
    }

    static func oneLine(_ message: UnsafePointer<CChar>?) -> String {
        guard let message else { return "" }
        return String(cString: message)
            .split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
            .joined(separator: "; ")
    }

    /// A one-line fix for a connection failure, chosen from its message.
    public static func connectionHint(for reason: String) -> String {
        if reason.contains("password authentication failed") || reason.contains("no password supplied") {
            return "check the user and password in DEPOT_DATABASE_URL"
        }
        if reason.contains("does not exist") && reason.contains("database") {
            return "create the database (createdb NAME) or name an existing one in DEPOT_DATABASE_URL"
        }
        if reason.contains("invalid") || reason.contains("missing") {
            return "DEPOT_DATABASE_URL must be a postgres:// URL or a conninfo string such as 'host=localhost dbname=depot'"
        }
        return "start PostgreSQL, or point DEPOT_DATABASE_URL (or PGHOST/PGPORT) at a running server"
    }
}

private func withCStrings<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { pointers.forEach { free($0) } }
    return body(pointers.map { UnsafePointer($0) })
}

private func withParameterPointers<R>(_ bindings: [SQL.Binding], _ body: ([UnsafePointer<CChar>?]) throws -> R) rethrows -> R {
    // Each binding's bytes stay alive for the call; NULL is a nil pointer.
    var buffers: [UnsafeMutableRawPointer?] = []
    buffers.reserveCapacity(bindings.count)
    defer { buffers.forEach { $0?.deallocate() } }
    for binding in bindings {
        guard let bytes = binding.bytes else { buffers.append(nil); continue }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
        bytes.withUnsafeBytes { if let base = $0.baseAddress { buffer.copyMemory(from: base, byteCount: bytes.count) } }
        buffers.append(buffer)
    }
    return try body(buffers.map { $0.map { UnsafePointer($0.assumingMemoryBound(to: CChar.self)) } })
}
