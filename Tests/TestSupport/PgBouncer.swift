import DepotProcess
import Foundation
import Postgres
#if canImport(Glibc)
import Glibc
#endif

/// A real PgBouncer in transaction mode in front of the test's PostgreSQL, on a free loopback
/// port, with a config and user list of its own in a temporary folder. `scripts/test` installs
/// Debian's `pgbouncer` when it runs as root; as root, PgBouncer (which refuses to run as root)
/// runs as the `postgres` user.
public final class PgBouncer: Sendable {
    public let port: Int
    /// Server connections per database and user (`default_pool_size`).
    public let poolSize: Int
    /// Its config and user list; removed by `stop()`, with anything a test puts there.
    public let directory: String
    let process: ChildProcess

    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
    }

    /// Starts PgBouncer in front of the server of `serverURL` (default the test server), pooling
    /// every database on it, and waits until it answers.
    public static func start(serverURL: String? = nil, poolSize: Int = 2) async throws -> PgBouncer {
        guard let executable = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"]
            .first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw Unavailable(description: "pgbouncer is not installed: run the tests with scripts/test as root, or apt-get install pgbouncer")
        }
        let server = try serverURL ?? TestDatabase.serverURL()
        guard let components = URLComponents(string: server), let host = components.host, let serverPort = components.port,
              let user = components.user, let password = components.password else {
            throw Unavailable(description: "the server URL must name host, port, user and password")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("depot-pgbouncer-\(UUID().uuidString.prefix(8))").path
        // Readable by the postgres user, whom PgBouncer becomes before it reads its files.
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let port = try freePort()
        // The throwaway server asks for SCRAM over TCP; PgBouncer answers clients with SCRAM too,
        // from the plain password in its user list.
        let settings = """
            [databases]
            * = host=\(host) port=\(serverPort)
            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = \(port)
            unix_socket_dir =
            auth_type = scram-sha-256
            auth_file = \(directory)/userlist.txt
            pool_mode = transaction
            default_pool_size = \(poolSize)
            max_client_conn = 1000
            admin_users = \(user)
            stats_period = 1
            """
        try settings.write(toFile: directory + "/pgbouncer.ini", atomically: true, encoding: .utf8)
        try "\"\(user)\" \"\(password.removingPercentEncoding ?? password)\"\n".write(toFile: directory + "/userlist.txt", atomically: true, encoding: .utf8)
        let asRoot = getuid() == 0
        let process = try ChildProcess(executable, (asRoot ? ["-u", "postgres"] : []) + [directory + "/pgbouncer.ini"])
        let bouncer = PgBouncer(port: port, poolSize: poolSize, directory: directory, process: process)
        let up = try await eventually(timeout: .seconds(20), every: .milliseconds(50)) {
            guard let connection = try? await Connection.connect(ConnectionConfiguration(bouncer.url(for: server))) else { return false }
            connection.close()
            return true
        }
        guard up else {
            let log = bouncer.log
            await bouncer.stop()
            throw Unavailable(description: "pgbouncer did not answer on port \(port): \(log.suffix(800))")
        }
        return bouncer
    }

    init(port: Int, poolSize: Int, directory: String, process: ChildProcess) {
        self.port = port
        self.poolSize = poolSize
        self.directory = directory
        self.process = process
    }

    /// `directURL` (a database on the server) with PgBouncer's address in place of the server's.
    public func url(for directURL: String) -> String {
        guard var components = URLComponents(string: directURL) else { return directURL }
        components.host = "127.0.0.1"
        components.port = port
        return components.string ?? directURL
    }

    /// Runs `body` with a PgBouncer started for it, and stops it afterwards, whatever happens.
    public static func with<T: Sendable>(poolSize: Int = 2, _ body: (PgBouncer) async throws -> T) async throws -> T {
        let bouncer = try await start(poolSize: poolSize)
        do {
            let value = try await body(bouncer)
            await bouncer.stop()
            return value
        } catch {
            await bouncer.stop()
            throw error
        }
    }

    /// Transactions PgBouncer has passed to `database`, as of its last stats refresh (every stats_period, 1 s here; `SHOW STATS` on its admin console,
    /// through psql: the console answers only the simple query protocol).
    public func transactions(database: String, serverURL: String? = nil) async throws -> Int {
        guard let psql = (["/usr/bin/psql"] + ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .map { "/usr/lib/postgresql/\($0)/bin/psql" }).first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw Unavailable(description: "psql is not installed (apt-get install postgresql-client)")
        }
        guard var console = URLComponents(string: url(for: try serverURL ?? TestDatabase.serverURL())) else { return 0 }
        console.path = "/pgbouncer"
        let output = try await runProcess(URL(fileURLWithPath: psql), [console.string!, "-AtX", "-F", "|", "-c", "SHOW STATS"])
        guard output.status == 0 else { throw Unavailable(description: "SHOW STATS failed: \(output.stderr)") }
        // database|total_xact_count|…
        for line in output.stdout.split(separator: "\n") {
            let fields = line.split(separator: "|", omittingEmptySubsequences: false)
            if fields.count > 1, fields[0] == database { return Int(fields[1]) ?? 0 }
        }
        return 0
    }

    /// What PgBouncer logged so far.
    public var log: String { process.stderr + process.stdout }

    /// Stops PgBouncer at once (SIGTERM), waits for it to end, and removes its folder.
    public func stop() async {
        process.signal(SIGTERM)
        _ = await process.wait()
        process.cleanUp()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

extension Cluster {
    /// The environment of a `depot` process that works through `bouncer` in transaction mode,
    /// with the direct URL for LISTEN.
    public func pooledEnvironment(through bouncer: PgBouncer) -> [String: String] {
        ["DEPOT_DATABASE_URL": bouncer.url(for: url), "DEPOT_DATABASE_POOL_MODE": "transaction", "DEPOT_LISTEN_DATABASE_URL": url]
    }

    /// A pool on this database through `bouncer`, in transaction mode.
    public func pooledPool(through bouncer: PgBouncer, maximumConnections: Int = 10) -> ConnectionPool {
        ConnectionPool(ConnectionConfiguration(bouncer.url(for: url), poolMode: .transaction), maximumConnections: maximumConnections)
    }

    /// This database's name, as PgBouncer's statistics name its pool.
    public var databaseName: String { URLComponents(string: url).map { String($0.path.dropFirst()) } ?? "" }
}
