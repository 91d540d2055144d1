import CLibPQ
import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Binary COPY into a table: the fastest way PostgreSQL takes many rows (a page at a time).
extension Connection {
    /// Runs `COPY … FROM STDIN (FORMAT binary)` with `rows` as its data; returns the rows copied.
    /// Outside a transaction it commits on its own, like any statement: all the rows or none.
    /// COPY takes no parameters, so `statement` must have none; every value travels in `rows`.
    @discardableResult
    public func copy(_ statement: SQL, rows: BinaryCopyRows) async throws -> Int {
        guard statement.bindings.isEmpty else {
            throw PostgresError(kind: .usage, message: "COPY takes no parameters; put the values in the rows", query: statement.text)
        }
        let stream = rows.stream()
        return try await onQueue {
            let handle = try self.liveHandle(mayReconnect: true)
            // The extended protocol, as every statement here: one statement per text, never a script.
            let started = PQexecParams(handle, statement.text, 0, nil, nil, nil, nil, 1)
            defer { PQclear(started) }
            try self.check(started, query: statement.text)
            guard PQresultStatus(started) == PGRES_COPY_IN else {
                self.abandonResults(handle, current: started)
                throw PostgresError(kind: .usage, message: "the statement is not one COPY … FROM STDIN", query: statement.text)
            }
            // Blocking mode: each call returns once libpq has queued or sent the bytes.
            let chunk = 1 << 20
            let sent = stream.withUnsafeBytes { bytes -> Bool in
                var offset = 0
                while offset < bytes.count {
                    let length = min(chunk, bytes.count - offset)
                    let pointer = bytes.baseAddress!.advanced(by: offset).assumingMemoryBound(to: CChar.self)
                    guard PQputCopyData(handle, pointer, Int32(length)) == 1 else { return false }
                    offset += length
                }
                return PQputCopyEnd(handle, nil) == 1
            }
            guard sent else {
                let lost = self.connectionLost(handle)
                self.abandonResults(handle, current: nil)
                throw lost
            }
            return try self.finishCopy(handle, query: statement.text)
        }
    }

    /// Reads every result of an ended COPY up to ReadyForQuery and returns the rows copied.
    ///
    /// The COPY's CommandComplete comes *before* its commit: outside a transaction the server
    /// commits at the Sync that follows CopyDone, and a commit that fails (a deferred trigger, a
    /// server crashing during the commit's WAL flush) answers after it, with an error or with the
    /// connection's end. So success is the whole exchange ending cleanly, not the first result.
    private func finishCopy(_ handle: OpaquePointer, query: String) throws -> Int {
        var copied: Int?
        var failure: Error?
        while let result = PQgetResult(handle) {
            defer { PQclear(result) }
            if PQresultStatus(result) == PGRES_COPY_IN {
                // Not ours to go on with; ending it as failed makes the server roll it back.
                _ = PQputCopyEnd(handle, "abandoned: Connection.copy ended its data already")
                failure = failure ?? PostgresError(kind: .usage, message: "the server asked for more COPY data after the end", query: query)
                continue
            }
            do {
                try check(result, query: query)
                if copied == nil, PQresultStatus(result) == PGRES_COMMAND_OK { copied = Int(String(cString: PQcmdTuples(result))) ?? 0 }
            } catch {
                failure = failure ?? error
            }
        }
        if let failure { throw failure }
        // libpq reports a lost connection as an error result; this catches any other way the
        // exchange could end without ReadyForQuery.
        guard PQstatus(handle) == CONNECTION_OK, let copied else { throw connectionLost(handle) }
        return copied
    }
}
