import DepotHTTP
import Foundation
import Postgres

/// A worker node: registers in `depot.nodes`, keeps a heartbeat, and runs every active processor
/// it may (empty `pinned_servers` or its name listed) with `member_count` members. It follows
/// changes to processor and endpoint rows through LISTEN/NOTIFY, with a periodic reconcile behind
/// it, and on `stop()` stops claiming, finishes or releases what it holds, and deregisters.
///
/// Each of those jobs is a `Service` (`NodeHeartbeat`, `NodeListener`, the vacuum and pruning
/// `PeriodicService`s, `ProcessorSupervisor`), run by one `ServiceGroup` that stops them in
/// reverse order.
public actor Node {
    /// How the node runs.
    public struct Configuration: Sendable {
        /// Unique in the cluster; `pinned_servers` refers to it.
        public var name: String
        /// How long a claim holds a message before another node may take it; renewed while a
        /// delivery runs. A node killed with `kill -9` delays its messages by at most this. Default 30 s.
        public var lease: Duration = .seconds(30)
        /// How often the node marks itself alive. Default 5 s.
        public var heartbeatInterval: Duration = .seconds(5)
        /// How often the node re-reads its processors even without a notification. Default 10 s.
        public var reconcileInterval: Duration = .seconds(10)
        /// How long an idle member at interval 0 waits for a notification before looking anyway. Default 2 s.
        public var idlePoll: Duration = .seconds(2)
        /// At start, wait for an unreachable database (true) or fail at once (false). A node
        /// that takes messages over HTTP waits: its producers fall back to failover stores meanwhile. Default false.
        public var waitForDatabase = false
        /// Dead rows in `depot.messages` past which the node runs VACUUM itself (a large table
        /// waits for a twentieth of its live rows); nil leaves it all to autovacuum. See
        /// `MessageVacuum` for why. Default 10,000.
        public var vacuumDeadRows: Int? = 10_000
        /// How many claim statements of one processor the node runs at once; its other members
        /// wait their turn for the database, not for their deliveries. More than the database
        /// has cores only adds lock and CPU contention (figures in commit 4daeab4). Default 3.
        public var claimConcurrency = 3
        /// How often the node prunes expired idempotency keys and dead nodes' rows, for as long
        /// as `depot.settings` says to keep them. Default 60 s.
        public var pruneInterval: Duration = .seconds(60)
        /// How long a stopping node waits for its services (the HTTP ingress answering, members
        /// finishing their deliveries) before it cancels them and exits; what a member still
        /// held then goes to another node when its lease runs out. Default 60 s.
        public var shutdownTimeout: Duration = .seconds(60)

        public init(name: String) { self.name = name }

        /// Nil when usable, else what is wrong.
        public var problem: String? {
            if name.isEmpty || name.count > 200 || name.contains("/") || name.unicodeScalars.contains(where: { $0.value < 32 }) {
                return "node name \"\(name)\" must be 1 to 200 characters, without \"/\" or control characters"
            }
            if lease < .seconds(1) { return "lease \(lease) is shorter than 1 second" }
            if heartbeatInterval <= .zero || reconcileInterval <= .zero || idlePoll <= .zero || pruneInterval <= .zero || shutdownTimeout <= .zero {
                return "intervals must be positive"
            }
            if claimConcurrency < 1 { return "claim concurrency \(claimConcurrency) must be at least 1" }
            if let vacuumDeadRows, vacuumDeadRows < 1 { return "vacuum threshold \(vacuumDeadRows) must be at least 1 dead row (nil turns it off)" }
            return nil
        }
    }

    public let configuration: Configuration
    let pool: ConnectionPool
    /// What the node counts; `/metrics` renders it.
    public nonisolated let metrics: NodeMetrics
    /// The node's LISTEN fanned out to HTTP claims waiting for messages; give it to `IngressService`.
    public nonisolated let arrivals: StoreArrivals
    let supervisor: ProcessorSupervisor
    /// Closed once the node's row is written: processors, listener and maintenance start then.
    private let registered = WakeSignal()
    private let shutdownRequest = ShutdownSignal()

    /// - Parameters:
    ///   - handlers: the handlers processors may name. Default `HandlerRegistry.stock`.
    ///   - stores: where store names lead; pass one to share memory stores with producers in this process.
    ///   - arrivals: told of every store notification the node hears. Default a new one.
    public init(_ configuration: Configuration, pool: ConnectionPool, handlers: HandlerRegistry = .stock,
                client: HTTPClient = HTTPClient(), stores: StoreDirectory? = nil, metrics: NodeMetrics = NodeMetrics(),
                arrivals: StoreArrivals = StoreArrivals()) {
        self.metrics = metrics
        self.arrivals = arrivals
        self.configuration = configuration
        self.pool = pool
        supervisor = ProcessorSupervisor(configuration: configuration, pool: pool, handlers: handlers, client: client,
                                         stores: stores ?? StoreDirectory(pool: pool), metrics: metrics, arrivals: arrivals,
                                         changed: WakeSignal(), registered: registered)
    }

    /// The node's services in start order; they stop in the reverse, so the row goes last and
    /// the processors stop after whatever runs `alongside` (the HTTP ingress).
    /// `listenConfiguration`: the connection the listener keeps (`ConnectionConfiguration.sessionConfiguration()`).
    func services(alongside extra: [any Service], listenConfiguration: ConnectionConfiguration) -> [any Service] {
        let name = configuration.name
        var services: [any Service] = [
            NodeHeartbeat(configuration: configuration, pool: pool, metrics: metrics, supervisor: supervisor, registered: registered),
            NodeListener(node: name, configuration: listenConfiguration, supervisor: supervisor, arrivals: arrivals, registered: registered),
        ]
        if let minimum = configuration.vacuumDeadRows {
            let vacuum = MessageVacuum(minimumDeadRows: minimum, pool: pool, node: name)
            services.append(PeriodicService(name: "vacuum", loop: PeriodicLoop(work: "vacuum of depot.messages", node: name, interval: .seconds(1)),
                                            registered: registered) { _ = try await vacuum.runOnce() })
        }
        let pruning = RetentionPruning(pool: pool)
        services.append(PeriodicService(
            name: "pruning",
            loop: PeriodicLoop(work: "retention pruning (expired idempotency keys, dead nodes, old sequence gaps)", node: name,
                               interval: configuration.pruneInterval, waitsFirst: true),
            registered: registered) { _ = try await pruning.runOnce() })
        return services + [supervisor] + extra
    }

    /// Runs until `stop()`, with `alongside` (the HTTP ingress) stopped first at shutdown.
    /// Throws only when the node cannot start (bad configuration, no database, or a transaction
    /// pool with no direct connection to LISTEN on) or cannot go on.
    public func run(alongside extra: [any Service] = []) async throws {
        if let problem = configuration.problem { throw StoreError(.invalidArgument, problem) }
        let listenConfiguration = try pool.configuration.sessionConfiguration()
        let group = ServiceGroup(services(alongside: extra, listenConfiguration: listenConfiguration), node: configuration.name,
                                 gracefulTimeout: configuration.shutdownTimeout, shutdownRequest: shutdownRequest)
        try await group.run()
    }

    /// Asks the node to stop; `run()` returns once everything held is delivered or released.
    /// HTTP claims waiting for messages answer at once with what they have.
    public nonisolated func stop() {
        arrivals.close()
        shutdownRequest.trigger()
    }

    /// Processors here that gave up reaching the database (`max_store_connection_attempts`)
    /// and wait for their deactivation to be written.
    public func processorsThatGaveUp() async -> [String] {
        await supervisor.processorsThatGaveUp()
    }

    /// Processor names running here now, with their member counts.
    public func runningProcessors() async -> [String: Int] {
        await supervisor.runningProcessors()
    }
}

/// The version nodes report in `depot.nodes`.
public let depotVersion = "0.1.0"
