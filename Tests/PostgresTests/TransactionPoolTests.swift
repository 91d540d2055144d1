import Foundation
import Postgres
import Testing
import TestSupport

/// `ConnectionConfiguration.PoolMode.transaction`: connections behind PgBouncer in transaction
/// mode keep nothing in their session, and LISTEN has a direct connection of its own.
@Suite("Transaction pools (PgBouncer in transaction mode)")
struct TransactionPoolTests {
    @Test("DEPOT_DATABASE_POOL_MODE and DEPOT_LISTEN_DATABASE_URL are read, and a wrong or missing one is named")
    func environment() throws {
        let plain = ConnectionConfiguration.fromEnvironment(["DEPOT_DATABASE_URL": "postgres://a@pooler:6432/depot"])
        #expect(plain.poolMode == .session)
        // A direct connection (or a session pool) LISTENs on its own string.
        #expect(try plain.sessionConfiguration().connectionString == "postgres://a@pooler:6432/depot")

        let pooled = ConnectionConfiguration.fromEnvironment([
            "DEPOT_DATABASE_URL": "postgres://a@pooler:6432/depot", "DEPOT_DATABASE_POOL_MODE": "transaction",
            "DEPOT_LISTEN_DATABASE_URL": "postgres://a@db:5432/depot",
        ])
        #expect(pooled.poolMode == .transaction)
        let listen = try pooled.sessionConfiguration()
        #expect(listen.connectionString == "postgres://a@db:5432/depot")
        #expect(listen.poolMode == .session)
        #expect(listen.source == "DEPOT_LISTEN_DATABASE_URL")

        let noListen = ConnectionConfiguration.fromEnvironment(["DEPOT_DATABASE_URL": "x", "DEPOT_DATABASE_POOL_MODE": "TRANSACTION"])
        #expect(noListen.poolMode == .transaction)
        let missing = #expect(throws: PostgresError.self) { try noListen.sessionConfiguration() }
        #expect(missing?.kind == .usage)
        #expect(missing?.hint?.contains("DEPOT_LISTEN_DATABASE_URL") == true)

        let wrong = ConnectionConfiguration.fromEnvironment(["DEPOT_DATABASE_POOL_MODE": "transactional"])
        let refused = #expect(throws: PostgresError.self) { try wrong.sessionConfiguration() }
        #expect(refused?.message.contains("DEPOT_DATABASE_POOL_MODE is \"transactional\"") == true)
        #expect(refused?.hint?.contains("transaction") == true)

        let empty = ConnectionConfiguration.fromEnvironment(["DEPOT_LISTEN_DATABASE_URL": ""])
        #expect(throws: PostgresError.self) { try empty.sessionConfiguration() }

        // A malformed LISTEN URL is named (and its password never shown) before a node starts.
        let malformed = ConnectionConfiguration.fromEnvironment([
            "DEPOT_DATABASE_POOL_MODE": "transaction", "DEPOT_LISTEN_DATABASE_URL": "postgres://a:S3CRET-pw@[::1/depot",
        ])
        let named = #expect(throws: PostgresError.self) { try malformed.sessionConfiguration() }
        #expect(named?.message.hasPrefix("DEPOT_LISTEN_DATABASE_URL is malformed") == true, "\(String(describing: named))")
        #expect(named.map { "\($0) \($0.debugDescription) \($0.hint ?? "")".contains("S3CRET") } == false)
    }

    @Test("a wrong DEPOT_DATABASE_POOL_MODE stops the first connect, naming the setting")
    func wrongModeStopsConnect() async throws {
        var environment = ProcessInfo.processInfo.environment
        environment["DEPOT_DATABASE_URL"] = try TestDatabase.serverURL()
        environment["DEPOT_DATABASE_POOL_MODE"] = "statement"
        let error = await #expect(throws: PostgresError.self) { try await Connection.connect(.fromEnvironment(environment)) }
        #expect(error?.kind == .usage)
        #expect(error?.message.contains("DEPOT_DATABASE_POOL_MODE") == true)
    }

    @Test("in transaction mode no statement is prepared on the server; in session mode they are")
    func nothingPrepared() async throws {
        let url = try TestDatabase.serverURL()
        let pooled = try await Connection.connect(ConnectionConfiguration(url, poolMode: .transaction))
        defer { pooled.close() }
        for value in 1...5 { #expect(try await pooled.query("SELECT \(value)::int + 1").first?.decode(at: 0, as: Int.self) == value + 1) }
        #expect(try await pooled.query("SELECT count(*) FROM pg_prepared_statements").first?.decode(at: 0, as: Int.self) == 0)

        let direct = try await Connection.connect(ConnectionConfiguration(url))
        defer { direct.close() }
        _ = try await direct.query("SELECT \(1)::int + 1")
        #expect(try await direct.query("SELECT count(*) FROM pg_prepared_statements").first?.decode(at: 0, as: Int.self) ?? 0 >= 2)
    }

    @Test("LISTEN on a connection in transaction mode is refused, naming where to LISTEN instead")
    func listenRefused() async throws {
        let pooled = try await Connection.connect(ConnectionConfiguration(try TestDatabase.serverURL(), poolMode: .transaction))
        defer { pooled.close() }
        let error = await #expect(throws: PostgresError.self) { try await pooled.listen("depot_messages") }
        #expect(error?.kind == .usage)
        #expect(error?.hint?.contains("DEPOT_LISTEN_DATABASE_URL") == true)
        // Nothing was subscribed.
        #expect(try await pooled.query("SELECT count(*) FROM pg_listening_channels()").first?.decode(at: 0, as: Int.self) == 0)
    }

    @Test("through PgBouncer, a client whose server session changed runs its statement in transaction mode; in session mode it fails with a hint naming the setting")
    func serverSessionChanges() async throws {
        let database = try await TestDatabase.createEmpty(prefix: "pgb")
        try await PgBouncer.with(poolSize: 2) { bouncer in
            let url = bouncer.url(for: database.connectionString)
            for mode in ConnectionConfiguration.PoolMode.allCases {
                let holder = try await Connection.connect(ConnectionConfiguration(url, poolMode: .transaction))
                defer { holder.close() }
                let client = try await Connection.connect(ConnectionConfiguration(url, poolMode: mode))
                defer { client.close() }
                // The holder keeps one server connection in a transaction, so the client's first
                // statement runs on the other. When the holder commits, its server connection is
                // the most recently used, and PgBouncer (LIFO) gives it to the client next.
                try await holder.execute("BEGIN")
                #expect(try await holder.query("SELECT 1").count == 1)
                #expect(try await client.query("SELECT \(41)::int + 1").first?.decode(at: 0, as: Int.self) == 42)
                try await holder.execute("COMMIT")
                switch mode {
                case .transaction:
                    #expect(try await client.query("SELECT \(41)::int + 1").first?.decode(at: 0, as: Int.self) == 42)
                case .session:
                    let error = await #expect(throws: PostgresError.self) { try await client.query("SELECT \(41)::int + 1") }
                    #expect(error?.sqlState == SQLState("26000"), "\(String(describing: error))")
                    #expect(error?.hint?.contains("DEPOT_DATABASE_POOL_MODE=transaction") == true)
                    #expect(error?.message.contains("as behind PgBouncer in transaction mode") == true, "\(String(describing: error))")
                }
            }
        }
    }

    @Test("through PgBouncer with 2 server connections, 40 transactions from a pool of 12 all finish (no deadlock)")
    func poolLargerThanPgBouncers() async throws {
        let database = try await TestDatabase.createEmpty(prefix: "pgb")
        let direct = try await Connection.connect(database)
        defer { direct.close() }
        try await direct.execute("CREATE TABLE done (n int PRIMARY KEY)")
        try await PgBouncer.with(poolSize: 2) { bouncer in
            let pool = ConnectionPool(ConnectionConfiguration(bouncer.url(for: database.connectionString), poolMode: .transaction), maximumConnections: 12)
            let work = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for n in 0..<40 {
                        group.addTask {
                            try await pool.withTransaction { connection in
                                // What a claim does: a setting for this transaction, a transaction lock, a row.
                                try await connection.executeUnsafeScript("SET LOCAL enable_sort = off")
                                try await connection.execute("SELECT pg_advisory_xact_lock(\(n % 3))")
                                try await connection.execute("INSERT INTO done (n) VALUES (\(Int32(n)))")
                                try await connection.execute("SELECT pg_sleep(0.01)")
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            let finished = try await eventually(timeout: .seconds(60)) {
                try await direct.query("SELECT count(*) FROM done").first?.decode(at: 0, as: Int.self) == 40
            }
            let done = try await direct.query("SELECT count(*) FROM done").first?.decode(at: 0, as: Int.self) ?? 0
            #expect(finished, "transactions done: \(done) of 40; pgbouncer: \(bouncer.log.suffix(500))")
            if finished { try await work.value } else { work.cancel() }
            await pool.close()
        }
    }
}
