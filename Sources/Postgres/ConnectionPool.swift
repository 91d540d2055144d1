/// A bounded set of connections shared by many tasks.
///
/// `withConnection` lends one connection to one caller at a time. Connections that broke
/// (server restart, network loss) are dropped on return and replaced by new ones on demand,
/// so the pool recovers by itself once the server answers again.
public actor ConnectionPool {
    public nonisolated let configuration: ConnectionConfiguration
    /// Most connections open at once. Default 10.
    public nonisolated let maximumConnections: Int
    private var idle: [Connection] = []
    private var openCount = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var isClosed = false

    public init(_ configuration: ConnectionConfiguration = .fromEnvironment(), maximumConnections: Int = 10) {
        precondition(maximumConnections >= 1, "a pool needs at least one connection")
        self.configuration = configuration
        self.maximumConnections = maximumConnections
    }

    /// Lends a connection to `body` and takes it back afterwards, whatever happens.
    public nonisolated func withConnection<T: Sendable>(_ body: (Connection) async throws -> T) async throws -> T {
        let connection = try await acquire()
        do {
            let value = try await body(connection)
            await release(connection)
            return value
        } catch {
            await release(connection)
            throw error
        }
    }

    /// Runs `body` in a transaction on one pooled connection.
    public nonisolated func withTransaction<T: Sendable>(_ body: (Connection) async throws -> T) async throws -> T {
        try await withConnection { connection in try await connection.transaction(body) }
    }

    /// Runs one statement on a pooled connection.
    @discardableResult
    public nonisolated func query(_ sql: SQL) async throws -> Rows {
        try await withConnection { try await $0.query(sql) }
    }

    /// Closes idle connections and refuses new work; lent connections close when returned.
    public func close() {
        isClosed = true
        idle.forEach { $0.close() }
        openCount -= idle.count
        idle.removeAll()
        waiters.forEach { $0.resume() }
        waiters.removeAll()
    }

    private func acquire() async throws -> Connection {
        while true {
            guard !isClosed else { throw PostgresError(kind: .usage, message: "the connection pool is closed") }
            if let connection = idle.popLast() {
                if connection.isBroken {
                    openCount -= 1
                    continue
                }
                return connection
            }
            if openCount < maximumConnections {
                openCount += 1
                do {
                    return try await Connection.connect(configuration)
                } catch {
                    openCount -= 1
                    wakeOne()
                    throw error
                }
            }
            await withCheckedContinuation { waiters.append($0) }
        }
    }

    private func release(_ connection: Connection) {
        // A connection returned inside a transaction (a caller's mistake) is not lent again.
        if isClosed || !connection.isReusable {
            connection.close()
            openCount -= 1
        } else {
            idle.append(connection)
        }
        wakeOne()
    }

    private func wakeOne() {
        if !waiters.isEmpty { waiters.removeFirst().resume() }
    }
}
