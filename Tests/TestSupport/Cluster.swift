import Depot
import DepotHTTP
import Foundation
import Postgres

/// A fresh migrated database of its own (nodes run every processor they see, so tests that run
/// nodes must not share one), with helpers to write rows, store messages and start nodes.
public struct Cluster: Sendable {
    public let pool: ConnectionPool
    /// The database's URL, for node processes.
    public let url: String

    public static func fresh() async throws -> Cluster {
        let configuration = try await TestDatabase.createEmpty(prefix: "c")
        let connection = try await Connection.connect(configuration)
        defer { connection.close() }
        try await Migrator().migrate(on: connection)
        return Cluster(pool: ConnectionPool(configuration, maximumConnections: 20), url: configuration.connectionString)
    }

    /// Runs SQL statements the test wrote itself (rows for stores, endpoints, processors).
    public func sql(_ text: String) async throws {
        try await pool.withConnection { try await $0.executeUnsafeScript(text) }
    }

    /// The rows of one query the test wrote itself.
    public func rows(_ text: String) async throws -> Rows {
        try await pool.query(SQL(unsafeSQL: text))
    }

    /// One integer from a query, e.g. a count.
    public func integer(_ text: String) async throws -> Int {
        try await rows(text).first?.decode(at: 0) ?? 0
    }

    /// Stores `count` text messages ("m0", "m1", …) in one batch; returns their ids.
    public func storeTexts(_ store: String, count: Int, prefix: String = "m") async throws -> [UUID] {
        try await PostgresStore(name: store, pool: pool).store((0..<count).map { OutgoingMessage(text: "\(prefix)\($0)") }).map(\.id)
    }

    /// Test timings: short leases and quick reconciles so failures show in seconds.
    public static func nodeConfiguration(_ name: String) -> Node.Configuration {
        var configuration = Node.Configuration(name: name)
        configuration.lease = .seconds(2)
        configuration.heartbeatInterval = .seconds(1)
        configuration.reconcileInterval = .seconds(1)
        configuration.idlePoll = .milliseconds(500)
        return configuration
    }

    /// Starts a node in this process; `configure` may change the test timings first.
    public func startNode(_ name: String, handlers: HandlerRegistry = .stock, stores: StoreDirectory? = nil,
                          configure: (inout Node.Configuration) -> Void = { _ in }) -> RunningNode {
        var configuration = Self.nodeConfiguration(name)
        configure(&configuration)
        let node = Node(configuration, pool: pool, handlers: handlers, stores: stores)
        return RunningNode(node: node, task: Task { try await node.run() })
    }

    /// Starts `depot node` as a child process on this database.
    public func startNodeProcess(_ name: String) throws -> ChildProcess {
        try ChildProcess(depotExecutable.path, ["node", "--name", name, "--lease", "2s", "--reconcile", "1s", "--heartbeat", "1s"],
                         environment: ["DEPOT_DATABASE_URL": url])
    }

    /// Starts an echo back end on a free port; returns it and its endpoint URL.
    public static func echo(_ behaviour: EchoBackend.Behaviour = .init()) throws -> (EchoBackend, String) {
        let echo = EchoBackend(behaviour: behaviour)
        let port = try echo.start()
        return (echo, "http://127.0.0.1:\(port)/in")
    }
}

/// A node running in this test process.
public struct RunningNode: Sendable {
    public let node: Node
    let task: Task<Void, Error>

    /// Stops it as SIGTERM would, and waits until it has.
    public func stop() async throws {
        await node.stop()
        try await task.value
    }
}

/// The `depot` binary built beside the tests.
public var depotExecutable: URL {
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("depot")
    if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
    return packageRoot.appendingPathComponent(".build/debug/depot")
}
