import DepotHTTP
import Foundation

/// One processor running on this node: `member_count` members, each a loop of
/// pace → claim (up to the batch) → deliver → settle (ack, retry, drop or deactivate). A group
/// processor sending to an endpoint also runs its forwarding half (`handoffDelivery`): started,
/// stopped and deactivated with it.
final class ProcessorRuntime: @unchecked Sendable {
    let plan: ProcessorPlan
    let node: String
    /// How long a claim holds a message; renewed while its delivery runs.
    let lease: Duration
    /// How long an idle member at interval 0 waits for a notification before looking anyway.
    let idlePoll: Duration
    let catalog: ProcessorCatalog
    let context: @Sendable (Message) -> HandlerContext
    let metrics: NodeMetrics

    /// Woken by a notification that the store got messages, and by `stop()`.
    let work = WakeSignal()
    /// Woken by `stop()` only: pacing sleeps are not cut short by new messages.
    private let stopSignal = WakeSignal()
    /// The members' claim statements, a few at a time (`Node.Configuration.claimConcurrency`).
    private let claims: StatementGate
    /// The cluster-wide pace, when the row has a `rate_limit`.
    private let pace: ClusterPace?
    private let lock = NSLock()
    private var stopping = false
    /// The forwarding half of a group processor with a target endpoint: delivers from the
    /// hand-off store to the endpoint under the row's rules.
    private let handoffDelivery: ProcessorRuntime?
    /// Set on a forwarding half: the runtime it belongs to, stopped with it.
    private weak var owner: ProcessorRuntime?
    /// Names the members in their leases (`node/processor/member`; a forwarding half's
    /// `node/processor/handoff/member`).
    private let memberLabel: String

    var definition: ProcessorDefinition { plan.definition }
    var isStopping: Bool { lock.withLock { stopping } }

    convenience init(plan: ProcessorPlan, node: String, lease: Duration, idlePoll: Duration, claimConcurrency: Int = 3,
                     catalog: ProcessorCatalog, metrics: NodeMetrics = NodeMetrics(),
                     context: @escaping @Sendable (Message) -> HandlerContext) {
        self.init(plan: plan, node: node, lease: lease, idlePoll: idlePoll, claimConcurrency: claimConcurrency, catalog: catalog,
                  metrics: metrics, context: context, memberLabel: plan.definition.name)
    }

    private init(plan: ProcessorPlan, node: String, lease: Duration, idlePoll: Duration, claimConcurrency: Int, catalog: ProcessorCatalog,
                 metrics: NodeMetrics, context: @escaping @Sendable (Message) -> HandlerContext, memberLabel: String) {
        handoffDelivery = plan.handoffDelivery.map {
            ProcessorRuntime(plan: $0, node: node, lease: lease, idlePoll: idlePoll, claimConcurrency: claimConcurrency, catalog: catalog,
                             metrics: metrics, context: context, memberLabel: "\(plan.definition.name)/handoff")
        }
        self.memberLabel = memberLabel
        claims = StatementGate(limit: claimConcurrency)
        // A group processor sending to an endpoint paces its deliveries, not its group step: the
        // two would otherwise share the row's bucket, the claims of members taking the tokens.
        pace = plan.definition.rateLimit == nil || handoffDelivery != nil ? nil : ClusterPace(processor: plan.definition.name, pool: catalog.pool)
        self.metrics = metrics
        self.plan = plan
        self.node = node
        self.lease = lease
        self.idlePoll = idlePoll
        self.catalog = catalog
        self.context = context
        handoffDelivery?.owner = self
    }

    /// Runs every member (and the forwarding half's) until `stop()`; each member finishes or
    /// releases what it holds first.
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            for member in 0..<definition.memberCount {
                group.addTask { await self.runMember(consumer: "\(self.node)/\(self.memberLabel)/\(member)") }
            }
            if let handoffDelivery { group.addTask { await handoffDelivery.run() } }
        }
    }

    /// Wakes the idle members that consume `store` (this processor's, or its forwarding half's).
    func wake(store: String) {
        if plan.source.name == store { work.wake() }
        handoffDelivery?.wake(store: store)
    }

    /// Wakes every idle member (notifications may have been missed).
    func wakeAll() {
        work.wake()
        handoffDelivery?.wakeAll()
    }

    /// How long an idle member waits before looking again: an in-order member whose head waits
    /// for its retry looks again after the retry interval, since no NOTIFY announces it.
    private var headPoll: Duration {
        guard definition.inOrder else { return idlePoll }
        return min(idlePoll, .milliseconds(max(10, definition.retryIntervalMilliseconds)))
    }

    /// Set once the processor gave up reaching the database; the node then leaves it stopped
    /// until its row is deactivated (written by `giveUp` once the database answers).
    var gaveUp: Bool { lock.withLock { deactivation != nil } || handoffDelivery?.gaveUp == true }
    private var deactivation: Task<Void, Never>?

    /// Stops the processor and deactivates its row with `reason`, trying every retry interval
    /// until the database answers (MI deactivates a processor that cannot reach its store).
    private func giveUp(_ reason: String) {
        let (catalog, name, node, interval) = (catalog, definition.name, node, definition.storeConnectionRetryIntervalMilliseconds)
        lock.withLock {
            guard deactivation == nil else { return }
            deactivation = Task {
                NodeLog.error(node: node, "processor \(name) stopped: \(reason)")
                while true {
                    if (try? await catalog.deactivate(name, reason: reason)) != nil { return }
                    try? await Task.sleep(for: .milliseconds(interval))
                }
            }
        }
        stop()
    }

    /// Stops claiming; members deliver what they are delivering and release the rest. A
    /// processor and its forwarding half stop together, whichever is told.
    func stop() {
        let already = lock.withLock {
            defer { stopping = true }
            return stopping
        }
        if already { return }
        work.close()
        stopSignal.close()
        handoffDelivery?.stop()
        owner?.stop()
    }

    // MARK: - The member loop

    private func runMember(consumer: String) async {
        var backoff = Backoff()
        var unreachable = 0
        var idle = IdleLook(looks: plan.source.mayHaveUnannouncedWrites)
        while !isStopping {
            do {
                if let cron = plan.cron {
                    guard let fire = cron.nextFire(after: Date()) else {
                        try await catalog.deactivate(definition.name, reason: "cron \"\(definition.cron ?? "")\" never fires")
                        return
                    }
                    await stopSignal.wait(timeout: .milliseconds(max(0, Int(fire.timeIntervalSinceNow * 1000))))
                    // Each fire drains the store.
                    while !isStopping, try await runOnce(consumer: consumer) > 0 {}
                } else if definition.intervalMilliseconds > 0 {
                    let started = ContinuousClock.now
                    _ = try await runOnce(consumer: consumer)
                    await stopSignal.wait(timeout: started + .milliseconds(definition.intervalMilliseconds) - .now)
                } else {
                    let unannounced = idle.looksFirst ? try await plan.source.hasUnannouncedWrites() : false
                    if let wait = idle.next(claimed: try await runOnce(consumer: consumer), unannounced: unannounced, poll: headPoll) {
                        await work.wait(timeout: wait)
                    }
                }
                backoff.succeeded()
                unreachable = 0
            } catch {
                // The database is unreachable or refused: say so once per streak and back off. A
                // notification (new messages, or the node's listener connected again) means the
                // database answers: try again at once.
                var wait = backoff.failed()
                if backoff.failures == 1 { NodeLog.warning(node: node, "processor \(definition.name): \(error); retrying") }
                if Producer.isUnavailability(error) {
                    unreachable += 1
                    let limit = definition.maxStoreConnectionAttempts
                    if limit > 0, unreachable >= limit {
                        giveUp("the database could not be reached in \(unreachable) attempts in a row (max_store_connection_attempts \(limit)): \(error)")
                        return
                    }
                    wait = .milliseconds(definition.storeConnectionRetryIntervalMilliseconds)
                }
                await work.wait(timeout: wait)
            }
        }
    }

    /// Claims a batch and settles every message in it; returns how many were claimed. A member
    /// with no pacing (interval 0, no cron) that got a full batch goes on at once, until a batch
    /// comes back short. How it acks and claims the next batch depends on the members:
    ///
    /// - many members: ack what it delivered and claim the next batch in one statement (one
    ///   commit per batch; the members keep the database busy between them);
    /// - one member: ack on a second connection while claiming the next batch, so the two
    ///   round trips overlap instead of queueing one behind the other (with several members the
    ///   others keep the database busy meanwhile, and it made no difference).
    ///
    /// With a `rate_limit` the member first takes tokens from the cluster's bucket and claims no
    /// more than it got; each paced batch is acked on its own and the member takes again (no
    /// ack-and-claim: a wait for tokens must not hold delivered messages unacked).
    func runOnce(consumer: String) async throws -> Int {
        var limit = definition.inOrder ? 1 : definition.kind == .sampling ? definition.concurrency : definition.batchSize
        let paced = pace != nil
        if let pace {
            limit = try await pace.take(limit, stopped: { [self] in isStopping }, sleep: { [stopSignal] in await stopSignal.wait(timeout: $0) })
            if limit == 0 { return 0 }
        }
        let continuous = plan.cron == nil && definition.intervalMilliseconds == 0 && !paced
        let overlapAcks = definition.memberCount == 1
        let source = plan.source
        if definition.inOrder { return try await runHeadOnce(consumer: consumer) }
        try await plan.groupStep?.releaseExpired(node: node, metrics: metrics)
        var batch = try await claims.run { [limit] in try await source.claim(limit: limit, consumer: consumer, lease: lease) }
        if let pace, batch.count < limit { try await pace.giveBack(limit - batch.count) }
        var claimed = 0
        var acking = PendingAck()
        while !batch.isEmpty {
            claimed += batch.count
            let delivered: [UUID]
            do {
                delivered = try await settleBatch(batch, consumer: consumer)
            } catch {
                await acking.finish()
                throw error
            }
            // An earlier ack that failed is tried again with these.
            let unacked = await acking.finish() + delivered
            guard continuous, batch.count == limit, !isStopping else {
                try await source.ack(unacked, consumer: consumer)
                break
            }
            if overlapAcks {
                acking = PendingAck(unacked) { try await source.ack(unacked, consumer: consumer) }
                do {
                    batch = try await source.claim(limit: limit, consumer: consumer, lease: lease)
                } catch {
                    await acking.finish()
                    throw error
                }
                continue
            }
            do {
                batch = try await claims.run { [limit] in try await source.ackAndClaim(unacked, limit: limit, consumer: consumer, lease: lease) }
            } catch {
                // The statement rolled back with its acks; ack on their own, or they come again.
                try await source.ack(unacked, consumer: consumer)
                throw error
            }
        }
        return claimed
    }

    /// An in-order processor's round: the store's head, if it is due and free, delivered and
    /// settled on its own (a failure releases it for its retry, and it stays the head). Returns
    /// how many it claimed (0 or 1).
    private func runHeadOnce(consumer: String) async throws -> Int {
        let source = plan.source
        guard let head = try await claims.run({ try await source.claimHead(consumer: consumer, lease: lease) }) else {
            try await pace?.giveBack(1)
            return 0
        }
        try await source.ack(try await settleBatch([head], consumer: consumer), consumer: consumer)
        return 1
    }

    /// Delivers and settles a claimed batch; returns the ids delivered, for the caller to ack.
    private func settleBatch(_ batch: [Message], consumer: String) async throws -> [UUID] {
        let keeper = keepLeases(batch.map(\.id), consumer: consumer)
        defer { keeper.cancel() }
        if let groupStep = plan.groupStep { return try await groupStep.absorb(batch, consumer: consumer, node: node, metrics: metrics) }
        if let copied = try await copyWhole(batch, consumer: consumer) { return copied }
        var delivered: [UUID] = []
        do {
            if definition.kind == .sampling {
                // A sampling batch runs its handlers at once, then settles in order.
                let outcomes = await withTaskGroup(of: (Int, DeliveryOutcome).self) { group in
                    for (index, message) in batch.enumerated() {
                        group.addImmediateTask { (index, await self.deliver(message, consumer: consumer)) }
                    }
                    var results = [DeliveryOutcome?](repeating: nil, count: batch.count)
                    for await (index, outcome) in group { results[index] = outcome }
                    return results
                }
                for (message, outcome) in zip(batch, outcomes) {
                    if try await settle(message, outcome!, consumer: consumer) { delivered.append(message.id) }
                }
            } else {
                var untried: [UUID] = []
                for message in batch {
                    // Stopping (or deactivated): what was not tried goes back, its attempt not counted.
                    if isStopping {
                        untried.append(message.id)
                        continue
                    }
                    let outcome = await deliver(message, consumer: consumer)
                    if try await settle(message, outcome, consumer: consumer) { delivered.append(message.id) }
                }
                try await plan.source.giveBack(untried, consumer: consumer)
            }
        } catch {
            // What was delivered is acked even when settling a later message failed.
            _ = try? await plan.source.ack(delivered, consumer: consumer)
            throw error
        }
        return delivered
    }

    /// A batch bound for another store by copying goes in one store call; the caller's ack then
    /// removes it from the source. When the target cannot answer now (the database is down),
    /// every message would fail alike: each is settled under the row's rules as a failed
    /// attempt without being tried on its own. Nil when this processor delivers message by
    /// message, or when the copy was refused: then each message is tried on its own, so that
    /// one bad message does not hold back the rest.
    private func copyWhole(_ batch: [Message], consumer: String) async throws -> [UUID]? {
        guard let target = plan.target as? StoreTarget, target.copiesBatches(from: plan.source),
              plan.replyHandler == nil, batch.count > 1, !isStopping else { return nil }
        let started = ContinuousClock.now
        do {
            try await target.copy(batch)
        } catch where Producer.isUnavailability(error) {
            let outcome = DeliveryOutcome.failed(reason: "store \(target.store.name): \(error)", response: nil)
            var untried: [UUID] = []
            for message in batch {
                if isStopping { untried.append(message.id); continue }
                _ = try await settle(message, outcome, consumer: consumer)
            }
            try await plan.source.giveBack(untried, consumer: consumer)
            return []
        } catch {
            return nil
        }
        let each = (ContinuousClock.now - started).seconds / Double(batch.count)
        for _ in batch {
            metrics.observeDelivery(seconds: each, processor: definition.name)
            metrics.record(.delivered, processor: definition.name)
        }
        return batch.map(\.id)
    }

    /// One attempt at the target, timed for the latency histogram.
    private func deliver(_ message: Message, consumer: String) async -> DeliveryOutcome {
        let started = ContinuousClock.now
        let outcome = await plan.target.deliver(message, from: plan.source, consumer: consumer)
        metrics.observeDelivery(seconds: (ContinuousClock.now - started).seconds, processor: definition.name)
        return outcome
    }

    /// Applies the outcome; returns true when the message was delivered and awaits its ack.
    private func settle(_ message: Message, _ outcome: DeliveryOutcome, consumer: String) async throws -> Bool {
        if case .delivered(let response) = outcome {
            metrics.record(.delivered, processor: definition.name)
            if let replyHandler = plan.replyHandler {
                await runQuietly(replyHandler, .reply, message, response: response, failure: nil)
            }
            return true
        }
        let (failure, response): (String, HTTPResponse?) = switch outcome {
        case .failed(let reason, let response): (reason, response)
        case .rejected(let reason, let response): (reason, response)
        case .delivered: ("", nil)
        }
        metrics.record(.failed, processor: definition.name, error: failure)
        if let faultHandler = plan.faultHandler {
            await runQuietly(faultHandler, .fault, message, response: response, failure: failure)
        }
        let source = plan.source
        switch FailurePolicy(definition: definition).action(after: outcome, attempts: message.attempts) {
        case .retry(let delay)?:
            try await source.release(message.id, consumer: consumer, retryAt: Date().addingTimeInterval(delay.seconds), error: failure)
            metrics.record(.retried, processor: definition.name)
        case .deadLetter(let reason)?:
            try await source.deadLetter(message.id, consumer: consumer, reason: DeadLetterReason(
                reason, lastError: failure, statusCode: response?.status, processor: definition.name, node: node))
            metrics.record(.deadLettered, processor: definition.name)
            NodeLog.warning(node: node, "processor \(definition.name): message \(message.id) dead-lettered: \(reason)")
        case .moveToFailStore(let name)?:
            if case .delivered = await StoreTarget(store: plan.failStore!).deliver(message, from: source, consumer: consumer) {
                metrics.record(.deadLettered, processor: definition.name)
                NodeLog.warning(node: node, "processor \(definition.name): message \(message.id) moved to fail store \(name) after \(message.attempts) attempts")
            } else {
                try await source.release(message.id, consumer: consumer, retryAt: Date().addingTimeInterval(definition.retryIntervalMilliseconds.seconds), error: failure)
            }
        case .deactivate(let reason)?:
            // The message goes back first in line, attempts kept; the processor stops everywhere.
            try await source.release(message.id, consumer: consumer, retryAt: Date(), error: failure)
            stop()
            if try await catalog.deactivate(definition.name, reason: reason) {
                NodeLog.error(node: node, "processor \(definition.name) deactivated: \(reason)")
                if let deactivateHandler = plan.deactivateHandler {
                    await runQuietly(deactivateHandler, .deactivation, message, response: response, failure: reason)
                }
            }
        case nil:
            break
        }
        return false
    }

    /// Renews the batch's leases every third of the lease while it is being delivered.
    private func keepLeases(_ ids: [UUID], consumer: String) -> Task<Void, Never> {
        let (source, lease) = (plan.source, lease)
        return Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: lease / 3)
                if Task.isCancelled { return }
                _ = try? await source.extendLeases(ids, consumer: consumer, lease: lease)
            }
        }
    }

    private func runQuietly(_ handler: MessageHandler, _ role: HandlerContext.Role, _ message: Message, response: HTTPResponse?, failure: String?) async {
        var handlerContext = context(message)
        handlerContext.response = response
        handlerContext.failure = failure
        handlerContext.role = role
        do {
            try await handler(handlerContext)
        } catch {
            NodeLog.warning(node: node, "processor \(definition.name): \(role.rawValue) failed for message \(message.id): \(error)")
        }
    }
}

private extension Int {
    /// Milliseconds as seconds.
    var seconds: TimeInterval { TimeInterval(self) / 1000 }
}
