import CLibPQ
import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// LISTEN / NOTIFY on a connection of its own: subscribe, send, and wait for notifications.
extension Connection {
    /// Subscribes this connection to a channel. Pair with `notifications(timeout:)`.
    /// After this the connection no longer reconnects by itself: a lost connection throws, so
    /// the owner knows to connect again and re-subscribe.
    /// Refused on a connection to a transaction pool (`PoolMode.transaction`), where the
    /// subscription would stay on a server session other clients use, and nothing would arrive.
    public func listen(_ channel: String) async throws {
        guard configuration.poolMode == .session else {
            throw PostgresError(kind: .usage, message: "LISTEN needs a session of its own, and this connection goes through a transaction pool",
                                hint: "LISTEN on a direct connection to PostgreSQL (DEPOT_LISTEN_DATABASE_URL; ConnectionConfiguration.sessionConfiguration())")
        }
        try await execute(SQL(unsafeSQL: "LISTEN \(quoteIdentifier(channel))"))
        try await onQueue { self.holdsSessionState = true }
    }

    /// Unsubscribes from a channel.
    public func unlisten(_ channel: String) async throws {
        try await execute(SQL(unsafeSQL: "UNLISTEN \(quoteIdentifier(channel))"))
    }

    /// Sends a notification (`pg_notify`, so the channel and payload are parameters).
    public func notify(_ channel: String, payload: String = "") async throws {
        try await execute("SELECT pg_notify(\(channel), \(payload))")
    }

    /// Waits until at least one notification arrives or `timeout` passes; returns what arrived.
    ///
    /// Blocks this connection's own thread, never the cooperative pool. Throws if the connection breaks.
    public func notifications(timeout: Duration) async throws -> [PostgresNotification] {
        try await onQueue {
            try self.awaitNotifications(try self.liveHandle(mayReconnect: false), millis: Self.pollMillis(timeout))
        }
    }

    /// Hands each notification to `receive` as it arrives, on this connection's thread, while
    /// `keepGoing()` (asked at least every `check`) says so. One hop to that thread for the whole
    /// listening session rather than one per wait: a listener woken for every stored message
    /// spends a thread switch less on each. Throws if the connection breaks.
    public func receiveNotifications(while keepGoing: @escaping @Sendable () -> Bool, check: Duration = .milliseconds(500),
                                     _ receive: @escaping @Sendable (PostgresNotification) -> Void) async throws {
        try await onQueue {
            let handle = try self.liveHandle(mayReconnect: false)
            while keepGoing() {
                let found = try self.awaitNotifications(handle, millis: Self.pollMillis(check))
                guard PQstatus(handle) == CONNECTION_OK else { throw self.connectionLost(handle) }
                found.forEach(receive)
            }
        }
    }

    /// What has arrived, or else what arrives within `millis`; on the connection's thread.
    private func awaitNotifications(_ handle: OpaquePointer, millis: Int32) throws -> [PostgresNotification] {
        let found = drainNotifications(handle)
        guard found.isEmpty else { return found }
        var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, millis) > 0 else { return [] }
        guard PQconsumeInput(handle) == 1 else { throw connectionLost(handle) }
        return drainNotifications(handle)
    }

    /// Returns what arrived so far: notifications kept aside earlier plus what libpq has read.
    private func drainNotifications(_ handle: OpaquePointer) -> [PostgresNotification] {
        PQconsumeInput(handle)
        keepNotifications(handle)
        defer { pendingNotifications.removeAll() }
        return pendingNotifications
    }

    /// Moves the notifications libpq has parsed into `pendingNotifications`.
    func keepNotifications(_ handle: OpaquePointer) {
        while let notice = PQnotifies(handle) {
            pendingNotifications.append(PostgresNotification(
                channel: String(cString: notice.pointee.relname),
                payload: String(cString: notice.pointee.extra),
                senderPID: notice.pointee.be_pid))
            PQfreemem(notice)
        }
    }
}
