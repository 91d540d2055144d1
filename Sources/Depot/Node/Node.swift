import DepotHTTP
import Foundation
import Postgres

/// A worker node: registers in `depot.nodes`, keeps a heartbeat, and runs every active processor
/// it may (empty `pinned_servers` or its name listed) with `member_count` members. It follows
/// changes to processor and endpoint rows through LISTEN/NOTIFY, with a periodic reconcile behind
/// it, and on `stop()` stops claiming, finishes or releases what it holds, and deregisters.
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

        public init(name: String) { self.name = name }

        /// Nil when usable, else what is wrong.
        public var problem: String? {
            if name.isEmpty || name.count > 200 || name.contains("/") || name.unicodeScalars.contains(where: { $0.value < 32 }) {
                return "node name \"\(name)\" must be 1 to 200 characters, without \"/\" or control characters"
            }
            if lease < .seconds(1) { return "lease \(lease) is shorter than 1 second" }
            if heartbeatInterval <= .zero || reconcileInterval <= .zero || idlePoll <= .zero || pruneInterval <= .zero { return "intervals must be positive" }
            if claimConcurrency < 1 { return "claim concurrency \(claimConcurrency) must be at least 1" }
            if let vacuumDeadRows, vacuumDeadRows < 1 { return "vacuum threshold \(vacuumDeadRows) must be at least 1 dead row (nil turns it off)" }
            return nil
        }
    }

    public let configuration: Configuration
    let pool: ConnectionPool
    let handlers: HandlerRegistry
    let client: HTTPClient
    let stores: StoreDirectory
    let catalog: ProcessorCatalog
    let registry: NodeRegistry
    /// What the node counts; `/metrics` renders it.
    public nonisolated let metrics: NodeMetrics
    /// The node's LISTEN fanned out to HTTP claims waiting for messages; give it to `IngressService`.
    public nonisolated let arrivals: StoreArrivals

    private var running: [String: (runtime: ProcessorRuntime, task: Task<Void, Never>)] = [:]
    private var endpoints: [String: EndpointDefinition] = [:]
    /// Runtimes told to stop that may still be finishing a delivery, awaited at shutdown.
    private var finishing: [UUID: Task<Void, Never>] = [:]
    private let reconcileSignal = WakeSignal()
    private let stopSignal = WakeSignal()
    /// Woken when the processors running here change, so the database hears of it at once.
    private let beatSignal = WakeSignal()
    private var stopping = false

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
        self.handlers = handlers
        self.client = client
        self.stores = stores ?? StoreDirectory(pool: pool)
        catalog = ProcessorCatalog(pool: pool)
        registry = NodeRegistry(pool: pool)
    }

    /// Runs until `stop()`. Throws only when the node cannot start (bad configuration, no database).
    public func run() async throws {
        if let problem = configuration.problem { throw StoreError(.invalidArgument, problem) }
        let name = configuration.name
        guard try await registerAtStart() else { return }
        NodeLog.info(node: name, "node started (pid \(ProcessInfo.processInfo.processIdentifier))")
        let listener = Task { await listen() }
        let heartbeat = Task { await beat() }
        let vacuuming = Task { await keepMessagesVacuumed() }
        let pruning = Task { await keepPruned() }
        while !stopping {
            do {
                try await reconcile()
            } catch {
                NodeLog.warning(node: name, "reconcile failed: \(error); retrying")
            }
            await reconcileSignal.wait(timeout: configuration.reconcileInterval)
        }
        // Shutdown, in reverse: stop claiming, let members finish or release, then deregister.
        listener.cancel()
        heartbeat.cancel()
        vacuuming.cancel()
        pruning.cancel()
        for (_, entry) in running { entry.runtime.stop() }
        for (_, entry) in running { await entry.task.value }
        for task in finishing.values { await task.value }
        running.removeAll()
        await report()  // what the members did since the last beat, before the row goes
        do { try await registry.deregister(name) } catch { NodeLog.warning(node: name, "could not deregister: \(error)") }
        NodeLog.info(node: name, "node stopped")
    }

    /// Registers the node; with `waitForDatabase`, retries until the database answers or the
    /// node is stopped (then returns false). Without it, the first failure is thrown.
    private func registerAtStart() async throws -> Bool {
        var backoff = Backoff()
        while !stopping {
            do {
                try await pool.withConnection { try await Migrator().requireCurrent(on: $0) }
                try await register()
                return true
            } catch let error as PostgresError where configuration.waitForDatabase && error.isConnectionLoss {
                let wait = backoff.failed()
                if backoff.failures == 1 { NodeLog.warning(node: configuration.name, "database unreachable: \(error); waiting for it") }
                await stopSignal.wait(timeout: wait)
            }
        }
        return false
    }

    /// Asks the node to stop; `run()` returns once everything held is delivered or released.
    public func stop() {
        stopping = true
        arrivals.close()
        reconcileSignal.close()
        stopSignal.close()
        beatSignal.close()
    }

    /// Processors here that gave up reaching the database (`max_store_connection_attempts`)
    /// and wait for their deactivation to be written.
    public func processorsThatGaveUp() -> [String] {
        running.filter { $0.value.runtime.gaveUp }.map(\.key).sorted()
    }

    /// Processor names running here now, with their member counts.
    public func runningProcessors() -> [String: Int] {
        running.mapValues { $0.runtime.definition.memberCount }
    }

    /// Reads the rows and starts, restarts or stops processors to match them.
    func reconcile() async throws {
        let snapshot = try await catalog.snapshot()
        endpoints = snapshot.endpoints
        var plans: [String: ProcessorPlan] = [:]
        let drains = FailoverDrain.definitions(for: snapshot, node: configuration.name)
        for definition in snapshot.processors + drains where definition.runs(on: configuration.name) {
            do {
                plans[definition.name] = try ProcessorPlan.make(definition, snapshot: snapshot, stores: stores, handlers: handlers,
                                                                 client: client, context: contextMaker(definition.name))
            } catch {
                // A wrong row disables that processor only, and says why in the row. If even that
                // fails, the node says so and goes on with the other rows.
                do {
                    if try await catalog.deactivate(definition.name, reason: "\(error)") {
                        NodeLog.error(node: configuration.name, "processor \(definition.name) disabled: \(error)")
                    }
                } catch let failure {
                    NodeLog.error(node: configuration.name, "processor \(definition.name) cannot run (\(error)) nor be disabled: \(failure)")
                }
            }
        }
        // Restart what changed, and what stopped itself while its row stayed active (a deactivation
        // that did not reach the database, or a row reactivated before this node saw it go off).
        let before = runningProcessors()
        defer { if runningProcessors() != before { beatSignal.wake() } }
        // A processor that gave up reaching the database stays stopped while its row, still
        // active until its deactivation is written, says to run it.
        for (name, entry) in running where plans[name]?.fingerprint != entry.runtime.plan.fingerprint
            || (entry.runtime.isStopping && !entry.runtime.gaveUp) {
            entry.runtime.stop()
            let id = UUID()
            finishing[id] = Task {
                await entry.task.value
                self.forgetFinished(id)
            }
            running[name] = nil
            NodeLog.info(node: configuration.name, "processor \(name) stopped")
        }
        for (name, plan) in plans.sorted(by: { $0.key < $1.key }) where running[name] == nil && !stopping {
            let runtime = ProcessorRuntime(plan: plan, node: configuration.name, lease: configuration.lease,
                                           idlePoll: configuration.idlePoll, claimConcurrency: configuration.claimConcurrency,
                                           catalog: catalog, metrics: metrics,
                                           context: contextMaker(name))
            running[name] = (runtime, Task { await runtime.run() })
            NodeLog.info(node: configuration.name, "processor \(name) started: \(plan.definition.kind.rawValue) from \(plan.definition.store), \(plan.definition.memberCount) member(s)")
        }
    }

    private func forgetFinished(_ id: UUID) { finishing[id] = nil }

    /// Wakes the idle members of every processor consuming `store`, and the HTTP claims waiting for it.
    func wake(store: String) {
        arrivals.announce(store)
        for (_, entry) in running { entry.runtime.wake(store: store) }
    }

    private func wakeAll() {
        arrivals.announceAll()
        for (_, entry) in running { entry.runtime.wakeAll() }
    }

    private func contextMaker(_ processor: String) -> @Sendable (Message) -> HandlerContext {
        let (node, client) = (configuration.name, client)
        let endpointsNow = endpoints
        return { message in
            HandlerContext(message: message, processor: processor, node: node, response: nil, failure: nil) { endpointName, message in
                guard let endpoint = endpointsNow[endpointName] else {
                    throw HandlerFailure("endpoint \"\(endpointName)\" is not in depot.endpoints")
                }
                return try await EndpointTarget.send(message, to: endpoint, client: client)
            }
        }
    }

    // MARK: - Background loops

    /// LISTENs for row changes and new messages on a connection of its own; reconnects when it breaks
    /// (and then reconciles and wakes everyone, since notifications may have been missed).
    private func listen() async {
        var backoff = Backoff()
        while !Task.isCancelled {
            do {
                let connection = try await Connection.connect(pool.configuration)
                defer { connection.close() }
                try await connection.listen("depot_config")
                try await connection.listen("depot_messages")
                // Rows changed before LISTEN took effect sent notifications no one heard: read them
                // again, and let HTTP claims that waited meanwhile look again.
                reconcileSignal.wake()
                arrivals.announceAll()
                if backoff.failures > 0 {
                    NodeLog.info(node: configuration.name, "listening again")
                    wakeAll()
                }
                backoff.succeeded()
                while !Task.isCancelled {
                    for notification in try await connection.notifications(timeout: .milliseconds(500)) {
                        if notification.channel == "depot_config" { reconcileSignal.wake() } else { wake(store: notification.payload) }
                    }
                }
            } catch {
                let wait = backoff.failed()
                if backoff.failures == 1 { NodeLog.warning(node: configuration.name, "listener lost: \(error); reconnecting") }
                await stopSignal.wait(timeout: wait)
            }
        }
    }

    /// Once a second, vacuums `depot.messages` when acked rows have piled up (see `MessageVacuum`).
    /// A role that may not vacuum the table is told once, and the node leaves it to autovacuum.
    private func keepMessagesVacuumed() async {
        guard let minimum = configuration.vacuumDeadRows else { return }
        let vacuum = MessageVacuum(minimumDeadRows: minimum, pool: pool)
        var failures = 0
        var checked = false
        while !Task.isCancelled && !stopping {
            do {
                if !checked {
                    guard try await vacuum.mayVacuum() else {
                        NodeLog.info(node: configuration.name, "not vacuuming depot.messages: this role does not own it; autovacuum alone cleans it")
                        return
                    }
                    checked = true
                }
                try await vacuum.vacuumIfDue()
                failures = 0
            } catch {
                failures += 1
                if failures == 1 { NodeLog.warning(node: configuration.name, "vacuum of depot.messages failed: \(error); retrying") }
            }
            await stopSignal.wait(timeout: .seconds(min(30, 1 << min(failures, 5))))
        }
    }

    /// Every `pruneInterval`, prunes expired idempotency keys, the rows of long-dead nodes and
    /// old sequence gaps (see `RetentionPruning`). A failure is said once per streak; the next pass tries again.
    private func keepPruned() async {
        let pruning = RetentionPruning(pool: pool)
        var failures = 0
        while !Task.isCancelled && !stopping {
            await stopSignal.wait(timeout: configuration.pruneInterval)
            if Task.isCancelled || stopping { return }
            do {
                try await pruning.runOnce()
                failures = 0
            } catch {
                failures += 1
                if failures == 1 { NodeLog.warning(node: configuration.name, "pruning expired idempotency keys, dead nodes and sequence gaps failed: \(error); retrying") }
            }
        }
    }

    private func beat() async {
        while !Task.isCancelled {
            await beatSignal.wait(timeout: configuration.heartbeatInterval)
            if Task.isCancelled || stopping { return }
            if await !report() {
                do { try await register() } catch { NodeLog.warning(node: configuration.name, "could not register again: \(error)") }
            }
        }
    }

    /// One heartbeat: alive, what runs here, and the processors' activity since the last one
    /// (given back to the metrics when it cannot be written, so the next beat carries it).
    /// Returns false only when the node's row is gone (an operator removed it).
    @discardableResult
    private func report() async -> Bool {
        let activity = metrics.takeActivity()
        do {
            return try await registry.heartbeat(configuration.name, running: runningProcessors(),
                                                heartbeatInterval: configuration.heartbeatInterval, activity: activity)
        } catch {
            metrics.restoreActivity(activity)
            NodeLog.warning(node: configuration.name, "heartbeat failed: \(error)")
            return true
        }
    }

    private func register() async throws {
        try await registry.register(configuration.name, host: ProcessInfo.processInfo.hostName,
                                    pid: Int(ProcessInfo.processInfo.processIdentifier), version: depotVersion,
                                    heartbeatInterval: configuration.heartbeatInterval)
    }
}

/// The version nodes report in `depot.nodes`.
public let depotVersion = "0.1.0"
