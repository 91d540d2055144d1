import Foundation
import Postgres
import Synchronization
import Testing
import TestSupport

@Suite("Connections, errors, transactions and notifications")
struct ConnectionTests {
    @Test("a server error carries SQLSTATE, message, detail and hint")
    func serverErrorFields() async throws {
        let connection = try await TestDatabase.connect()
        defer { connection.close() }
        let error = await #expect(throws: PostgresError.self) {
            try await connection.execute("""
                DO $$ BEGIN RAISE EXCEPTION 'broken thing' USING ERRCODE = '22023', DETAIL = 'the detail', HINT = 'the hint'; END $$
                """)
        }
        #expect(error?.kind == .server)
        #expect(error?.sqlState == SQLState("22023"))
        #expect(error?.message == "broken thing")
        #expect(error?.detail == "the detail")
        #expect(error?.hint == "the hint")
        // The connection stays usable after a statement error.
        #expect(try await connection.query("SELECT 1").first?.decode(at: 0, as: Int.self) == 1)
    }

    @Test("a wrong password is a connection error that never shows the password")
    func wrongPassword() async throws {
        guard var url = URLComponents(string: try TestDatabase.serverURL()) else { return }
        url.password = "not-the-password-S3CRET"
        let error = await #expect(throws: PostgresError.self) {
            try await Connection.connect(ConnectionConfiguration(url.string!))
        }
        #expect(error?.kind == .connection)
        #expect(error?.message.contains("password authentication failed") == true)
        #expect(error.map { "\($0) \($0.debugDescription) \($0.hint ?? "")" }?.contains("S3CRET") == false)
        #expect(error?.hint?.contains("password") == true)
    }

    @Test("an unreachable server is a connection error with a fix")
    func unreachable() async throws {
        let error = await #expect(throws: PostgresError.self) {
            try await Connection.connect(ConnectionConfiguration("postgres://depot:hunter2@127.0.0.1:1/depot"))
        }
        #expect(error?.kind == .connection)
        #expect(error?.isConnectionLoss == true)
        #expect(error?.description.contains("hunter2") == false)
        #expect(error?.hint?.contains("DEPOT_DATABASE_URL") == true)
    }

    @Test("a malformed connection string is refused without repeating its password")
    func malformedURL() async throws {
        for text in ["postgres://u:s3cret@[::1/db", "postgres://u:s3cret@[::1]x/db", "host=localhost password=s3cret port"] {
            let error = await #expect(throws: PostgresError.self) { try await Connection.connect(ConnectionConfiguration(text)) }
            #expect(error?.kind == .usage, "\(text)")
            #expect(error.map { "\($0) \($0.debugDescription) \($0.hint ?? "")" }?.contains("s3cret") == false, "\(text) leaked: \(String(describing: error))")
        }
    }

    @Test("a transaction whose statement failed is reported as failed, not committed")
    func swallowedErrorIsNotACommit() async throws {
        let connection = try await TestDatabase.connect()
        defer { connection.close() }
        let error = await #expect(throws: PostgresError.self) {
            try await connection.transaction { connection in
                _ = try? await connection.execute("SELECT 1 / 0")
                return 1
            }
        }
        #expect(error?.message.contains("rolled back") == true)
        #expect(try await connection.query("SELECT 1").count == 1)
    }

    @Test("a connection handed back inside a transaction is not lent again")
    func poolDropsConnectionsInTransaction() async throws {
        let pool = ConnectionPool(ConnectionConfiguration(try TestDatabase.serverURL()), maximumConnections: 1)
        struct Oops: Error {}
        await #expect(throws: Oops.self) {
            try await pool.withConnection { connection -> Int in
                try await connection.execute("BEGIN")
                _ = try? await connection.execute("SELECT 1 / 0")
                throw Oops()
            }
        }
        let fine = try await pool.query("SELECT 41 + 1").first?.decode(at: 0, as: Int.self)
        #expect(fine == 42)
        await pool.close()
    }

    @Test("a transaction commits, and a thrown error rolls it back")
    func transactions() async throws {
        let connection = try await TestDatabase.connect()
        defer { connection.close() }
        let table = "tx_\(UUID().uuidString.prefix(8).lowercased())"
        try await connection.execute(SQL(unsafeSQL: "CREATE TABLE \(table) (v int)"))
        try await connection.transaction { try await $0.execute(SQL(unsafeSQL: "INSERT INTO \(table) VALUES (1)")) }
        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await connection.transaction { connection in
                try await connection.execute(SQL(unsafeSQL: "INSERT INTO \(table) VALUES (2)"))
                throw Abort()
            }
        }
        let values = try await connection.query(SQL(unsafeSQL: "SELECT v FROM \(table) ORDER BY v")).map { try $0.decode(at: 0, as: Int.self) }
        #expect(values == [1])
    }

    @Test("LISTEN receives NOTIFY from another connection")
    func listenNotify() async throws {
        let listener = try await TestDatabase.connect()
        let sender = try await TestDatabase.connect()
        defer { listener.close(); sender.close() }
        let channel = "depot test \(UUID().uuidString.prefix(6))"
        try await listener.listen(channel)
        let quiet = try await listener.notifications(timeout: .milliseconds(50))
        #expect(quiet.isEmpty)
        try await sender.notify(channel, payload: "hello 'there'")
        var received: [PostgresNotification] = []
        let arrived = try await eventually(timeout: .seconds(5), every: .milliseconds(1)) {
            received += try await listener.notifications(timeout: .milliseconds(200))
            return !received.isEmpty
        }
        #expect(arrived)
        #expect(received.first?.channel == channel)
        #expect(received.first?.payload == "hello 'there'")
    }

    @Test("receiveNotifications hands over each NOTIFY in order until told to stop, and throws when its connection is killed")
    func receiveNotifications() async throws {
        let listener = try await TestDatabase.connect()
        let sender = try await TestDatabase.connect()
        defer { listener.close(); sender.close() }
        let channel = "depot receive \(UUID().uuidString.prefix(6))"
        try await listener.listen(channel)
        let received = Mutex<[String]>([])
        let stop = Mutex(false)
        let receiving = Task {
            try await listener.receiveNotifications(while: { !stop.withLock { $0 } }, check: .milliseconds(20)) { notification in
                if notification.channel == channel { received.withLock { $0.append(notification.payload) } }
            }
        }
        for index in 0..<20 { try await sender.notify(channel, payload: "n\(index)") }
        #expect(try await eventually(timeout: .seconds(5)) { received.withLock { $0.count } == 20 })
        #expect(received.withLock { $0 } == (0..<20).map { "n\($0)" })
        stop.withLock { $0 = true }
        try await receiving.value  // returns once told to stop

        let pid = try await listener.query("SELECT pg_backend_pid()").first!.decode(at: 0, as: Int32.self)
        let killed = Task { try await listener.receiveNotifications(while: { true }, check: .milliseconds(20)) { _ in } }
        try await sender.execute("SELECT pg_terminate_backend(\(pid))")
        await #expect(throws: PostgresError.self) { try await killed.value }
    }

    @Test("a pool lends at most its size and reuses connections")
    func poolBounds() async throws {
        let pool = ConnectionPool(ConnectionConfiguration(try TestDatabase.serverURL()), maximumConnections: 3)
        let pids = try await withThrowingTaskGroup(of: Int32.self) { group in
            for _ in 0..<12 {
                group.addTask {
                    try await pool.withConnection { connection in
                        try await connection.execute("SELECT pg_sleep(0.05)")
                        return try await connection.query("SELECT pg_backend_pid()").first!.decode(at: 0, as: Int32.self)
                    }
                }
            }
            return try await group.reduce(into: Set<Int32>()) { $0.insert($1) }
        }
        #expect(pids.count == 3)
        await pool.close()
    }
}
