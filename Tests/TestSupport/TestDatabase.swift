import Depot
import Foundation
import Postgres

/// The PostgreSQL that `scripts/test` started, and fresh databases on it for each suite.
public enum TestDatabase {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String {
            "DEPOT_TEST_DATABASE_URL is not set: run the tests with scripts/test, which starts a throwaway PostgreSQL"
        }
    }

    /// The server's URL, as scripts/test exported it.
    public static func serverURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["DEPOT_TEST_DATABASE_URL"], !url.isEmpty else { throw Missing() }
        return url
    }

    /// A connection of its own to the test server's database; the caller closes it.
    public static func connect() async throws -> Connection {
        try await Connection.connect(ConnectionConfiguration(try serverURL()))
    }

    /// A URL for database `name` on the test server.
    public static func url(database name: String) throws -> String {
        guard var components = URLComponents(string: try serverURL()) else { throw Missing() }
        components.path = "/" + name
        return components.string!
    }

    /// Creates an empty database and returns its configuration.
    public static func createEmpty(prefix: String = "t") async throws -> ConnectionConfiguration {
        let name = "\(prefix)_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased())"
        let admin = try await Connection.connect(ConnectionConfiguration(try serverURL()))
        defer { admin.close() }
        try await admin.execute(SQL(unsafeSQL: "CREATE DATABASE \(quoteIdentifier(name))"))
        return ConnectionConfiguration(try url(database: name))
    }

    /// Creates a database with Depot's schema migrated, and a pool on it.
    public static func migrated(maximumConnections: Int = 10) async throws -> ConnectionPool {
        let configuration = try await createEmpty()
        let connection = try await Connection.connect(configuration)
        defer { connection.close() }
        try await Migrator().migrate(on: connection)
        return ConnectionPool(configuration, maximumConnections: maximumConnections)
    }

    /// Declares a store with a unique name (or the given one) and returns its name.
    @discardableResult
    public static func declareStore(_ name: String = "s-\(UUID().uuidString.prefix(8))", on pool: ConnectionPool) async throws -> String {
        try await pool.query("INSERT INTO depot.stores (name) VALUES (\(name))")
        return name
    }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
public func eventually(timeout: Duration = .seconds(10), every interval: Duration = .milliseconds(20),
                       _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: interval)
    }
    return try await condition()
}

/// One migrated database shared by the tests that only need their own store names in it.
private let sharedDatabase = Task<ConnectionPool, Error> { try await TestDatabase.migrated(maximumConnections: 16) }

extension TestDatabase {
    /// The shared migrated database's pool; give each test its own store names.
    public static func shared() async throws -> ConnectionPool { try await sharedDatabase.value }
}

/// Waits (up to a minute) until the server's clock is at least `margin` away from the next
/// minute, so that per-minute rows a test writes for "this minute and the 14 before" are still
/// the minutes a page or query shows moments later. Throws when the moment never comes.
public func awayFromMinuteBoundary(_ pool: ConnectionPool, margin: Duration = .seconds(20)) async throws {
    let latestSecond = 60 - Double(margin.components.seconds)
    let ready = try await eventually(timeout: .seconds(60), every: .milliseconds(250)) {
        let second = try await pool.query("SELECT extract(second FROM clock_timestamp())::float8 AS s").first?.decode("s", as: Double.self) ?? 60
        return second < latestSecond
    }
    guard ready else { throw PostgresError(kind: .usage, message: "the server's clock never left the end of a minute") }
}
