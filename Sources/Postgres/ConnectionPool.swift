import Synchronization

/// A bounded set of connections shared by many tasks.
///
/// `withConnection` lends one connection to one caller at a time. Connections that broke
/// (server restart, network loss) are dropped on return and replaced by new ones on demand,
/// so the pool recovers by itself once the server answers again.
public final class ConnectionPool: Sendable {
    public let configuration: ConnectionConfiguration
    /// Most connections open at once. Default 10.
    public let maximumConnections: Int
    /// Lending and taking back are a few instructions under a lock, not a hop to an actor: a
    /// caller on a thread that may block (`BlockingThread`) stays on it for the whole statement.
    private let state = Mutex(State())

    private struct State {
        var idle: [Connection] = []
        var openCount = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
        var isClosed = false
    }

    public init(_ configuration: ConnectionConfiguration = .fromEnvironment(), maximumConnections: Int = 10) {
        precondition(maximumConnections >= 1, "a pool needs at least one connection")
        self.configuration = configuration
        self.maximumConnections = maximumConnections
    }

    /// Lends a connection to `body` and takes it back afterwards, whatever happens.
    public func withConnection<T: Sendable>(_ body: (Connection) async throws -> T) async throws -> T {
        let connection = try await acquire()
        do {
            let value = try await body(connection)
            release(connection)
            return value
        } catch {
            release(connection)
            throw error
        }
    }

    /// Runs `body` in a transaction on one pooled connection.
    public func withTransaction<T: Sendable>(_ body: (Connection) async throws -> T) async throws -> T {
        try await withConnection { connection in try await connection.transaction(body) }
    }

    /// Runs one statement on a pooled connection.
    @discardableResult
    public func query(_ sql: SQL) async throws -> Rows {
        try await withConnection { try await $0.query(sql) }
    }

    /// Closes idle connections and refuses new work; lent connections close when returned.
    public func close() async {
        let (idle, waiters) = state.withLock { state in
            state.isClosed = true
            defer {
                state.openCount -= state.idle.count
                state.idle.removeAll()
                state.waiters.removeAll()
            }
            return (state.idle, state.waiters)
        }
        idle.forEach { $0.close() }
        waiters.forEach { $0.resume() }
    }

    private enum Step {
        case lend(Connection)
        case connect
        case wait
    }

    private func acquire() async throws -> Connection {
        while true {
            let step: Step? = state.withLock { state in
                guard !state.isClosed else { return nil }
                if let connection = state.idle.popLast() { return .lend(connection) }
                if state.openCount < maximumConnections {
                    state.openCount += 1
                    return .connect
                }
                return .wait
            }
            switch step {
            case nil:
                throw PostgresError(kind: .usage, message: "the connection pool is closed")
            case .lend(let connection):
                if connection.isBroken {
                    connection.close()
                    state.withLock { $0.openCount -= 1 }
                    continue
                }
                return connection
            case .connect:
                do {
                    return try await Connection.connect(configuration)
                } catch {
                    let waiter = state.withLock { state in
                        state.openCount -= 1
                        return state.waiters.isEmpty ? nil : state.waiters.removeFirst()
                    }
                    waiter?.resume()
                    throw error
                }
            case .wait:
                await withCheckedContinuation { continuation in
                    // Whatever changed since the look above (a connection back, one closed,
                    // the pool closed) is seen here, under the same lock release() takes.
                    let lookAgain = state.withLock { state in
                        if state.isClosed || !state.idle.isEmpty || state.openCount < maximumConnections { return true }
                        state.waiters.append(continuation)
                        return false
                    }
                    if lookAgain { continuation.resume() }
                }
            }
        }
    }

    private func release(_ connection: Connection) {
        // A connection returned inside a transaction (a caller's mistake) is not lent again.
        let reusable = connection.isReusable
        let (closing, waiter) = state.withLock { state in
            let closing = state.isClosed || !reusable
            if closing {
                state.openCount -= 1
            } else {
                state.idle.append(connection)
            }
            return (closing, state.waiters.isEmpty ? nil : state.waiters.removeFirst())
        }
        if closing { connection.close() }
        waiter?.resume()
    }
}
