import DepotHTTP
import Foundation
import Postgres
import Synchronization

/// The node's processors: reads the rows (`runOnce`, on every notification and every
/// reconcile interval) and starts, restarts or stops processors to match them; at shutdown it
/// stops claiming and waits while the members deliver or release what they hold.
actor ProcessorSupervisor: Service {
    nonisolated let name = "processors"
    let configuration: Node.Configuration
    let handlers: HandlerRegistry
    let client: HTTPClient
    let stores: StoreDirectory
    let catalog: ProcessorCatalog
    let metrics: NodeMetrics
    let arrivals: StoreArrivals
    /// Wakes the loop for a reconcile now (a row changed, or the listener connected again).
    nonisolated let nudge = WakeSignal()
    /// Woken when the processors running here change, so the heartbeat reports it at once.
    nonisolated let changed: WakeSignal
    /// Closed once the node is registered: processors start only then.
    nonisolated let registered: WakeSignal

    private var running: [String: (runtime: ProcessorRuntime, task: Task<Void, Never>)] = [:] {
        didSet { wakeTargets.withLock { $0 = running.values.map(\.runtime) } }
    }
    /// The runtimes in `running`, for `wakeNow` to reach without a hop to this actor.
    private nonisolated let wakeTargets = Mutex<[ProcessorRuntime]>([])
    private var endpoints: [String: EndpointDefinition] = [:]
    /// Runtimes told to stop that may still be finishing a delivery, awaited at shutdown.
    private var finishing: [UUID: Task<Void, Never>] = [:]
    private var stopping = false

    init(configuration: Node.Configuration, pool: ConnectionPool, handlers: HandlerRegistry, client: HTTPClient, stores: StoreDirectory,
         metrics: NodeMetrics, arrivals: StoreArrivals, changed: WakeSignal, registered: WakeSignal) {
        self.configuration = configuration
        self.handlers = handlers
        self.client = client
        self.stores = stores
        self.metrics = metrics
        self.arrivals = arrivals
        self.changed = changed
        self.registered = registered
        catalog = ProcessorCatalog(pool: pool)
    }

    func run(_ shutdown: ShutdownSignal) async {
        if await shutdown.wait(for: registered) {
            let loop = PeriodicLoop(work: "reconcile", node: configuration.name, interval: configuration.reconcileInterval, nudge: nudge)
            await loop.run(until: shutdown) { try await self.runOnce() }
        }
        await stopAll()
    }

    /// Processor names running here now, with their member counts.
    func runningProcessors() -> [String: Int] {
        running.mapValues { $0.runtime.definition.memberCount }
    }

    /// Processors here that gave up reaching the database (`max_store_connection_attempts`)
    /// and wait for their deactivation to be written.
    func processorsThatGaveUp() -> [String] {
        running.filter { $0.value.runtime.gaveUp }.map(\.key).sorted()
    }

    /// One reconcile: reads the rows and starts, restarts or stops processors to match them.
    func runOnce() async throws {
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
        defer { if runningProcessors() != before { changed.wake() } }
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

    /// Stops claiming and waits while every member delivers or releases what it holds.
    func stopAll() async {
        stopping = true
        arrivals.close()
        for (_, entry) in running { entry.runtime.stop() }
        for (_, entry) in running { await entry.task.value }
        for task in finishing.values { await task.value }
        running.removeAll()
    }

    private func forgetFinished(_ id: UUID) { finishing[id] = nil }

    /// Wakes the idle members of every processor consuming `store`, and the HTTP claims waiting
    /// for it. Synchronous, from any thread: the listener calls it for each notification from
    /// the thread that read it.
    nonisolated func wakeNow(store: String) {
        arrivals.announce(store)
        for runtime in wakeTargets.withLock({ $0 }) { runtime.wake(store: store) }
    }

    /// Wakes every member and every waiting HTTP claim (notifications may have been missed).
    func wakeAll() {
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
}
