import DepotHTTP
import Foundation

/// A processor row checked against what this node has (endpoints, stores, handlers), with
/// everything resolved that its members need. A row that cannot be planned disables only itself.
struct ProcessorPlan: Sendable {
    let definition: ProcessorDefinition
    /// The endpoints the row depends on, so a change to one of them restarts the processor.
    let endpoints: [EndpointDefinition]
    let source: any MessageStore
    let target: any DeliveryTarget
    let failStore: (any MessageStore)?
    let replyHandler: MessageHandler?
    let faultHandler: MessageHandler?
    let deactivateHandler: MessageHandler?
    let cron: CronSchedule?
    /// Set for an aggregating or resequencing processor: its members hand each claimed batch to it.
    var groupStep: (any GroupStep)? = nil
    /// Set for a group processor with a target endpoint: the store its releases go into, which
    /// `handoffDelivery` empties into the endpoint.
    var handoff: (any MessageStore)? = nil

    /// The forwarding half of a group processor that sends to an endpoint: the same row (name,
    /// members, batch, pacing, retry, drop, fail store, handlers), as a forwarding processor from
    /// the hand-off store to `target`. Its deactivation and counts are the row's.
    var handoffDelivery: ProcessorPlan? {
        guard let handoff, definition.targetEndpoint != nil else { return nil }
        var forwarding = definition
        forwarding.kind = .forwarding
        forwarding.store = handoff.name
        return ProcessorPlan(definition: forwarding, endpoints: endpoints, source: handoff, target: target, failStore: failStore,
                             replyHandler: replyHandler, faultHandler: faultHandler, deactivateHandler: deactivateHandler, cron: cron)
    }

    /// What decides whether a running processor must restart: its row and its endpoints.
    var fingerprint: Fingerprint { Fingerprint(definition: definition, endpoints: endpoints) }

    struct Fingerprint: Equatable, Sendable {
        let definition: ProcessorDefinition
        let endpoints: [EndpointDefinition]
    }

    /// Plans `definition`; throws a `PlanProblem` that says what is wrong with the row.
    static func make(_ definition: ProcessorDefinition, snapshot: ProcessingSnapshot, stores: StoreDirectory,
                     handlers: HandlerRegistry, client: HTTPClient, context: @escaping @Sendable (Message) -> HandlerContext) throws -> ProcessorPlan {
        func endpoint(_ name: String, column: String) throws -> EndpointDefinition {
            if let found = snapshot.endpoints[name] { return found }
            throw PlanProblem("\(column) names endpoint \"\(name)\": " + (snapshot.unusableEndpoints[name] ?? "no such row in depot.endpoints"))
        }
        func store(_ name: String, column: String) throws -> any MessageStore {
            guard let kind = snapshot.stores[name]?.kind else { throw PlanProblem("\(column) names store \"\(name)\", which is not declared") }
            do { return try stores.store(named: name, kind: kind) } catch { throw PlanProblem("\(column): \(error)") }
        }
        func handler(_ name: String?, column: String) throws -> MessageHandler? {
            guard let name else { return nil }
            guard let found = handlers.handler(named: name) else {
                throw PlanProblem("\(column) \"\(name)\" is not a handler on this node; known: \(handlers.names.joined(separator: ", "))")
            }
            return found
        }

        if let failStore = definition.failStore, failStore == definition.store {
            throw PlanProblem("fail_store is the processor's own store \"\(failStore)\"; name another store or NULL")
        }
        var used: [EndpointDefinition] = []
        for (column, name) in definition.handlerReferences where name.hasPrefix("call:") {
            used.append(try endpoint(String(name.dropFirst(5)), column: column))
        }
        let cron: CronSchedule?
        do { cron = try definition.cron.map(CronSchedule.init) } catch { throw PlanProblem("cron: \(error)") }
        let target: any DeliveryTarget
        switch definition.kind {
        case .forwarding:
            guard let name = definition.targetEndpoint else { throw PlanProblem("target_endpoint is required for a forwarding processor") }
            let found = try endpoint(name, column: "target_endpoint")
            used.append(found)
            target = EndpointTarget(endpoint: found, client: client, nonRetryStatusCodes: Set(definition.nonRetryStatusCodes))
        case .sampling:
            guard let name = definition.handler, let found = try handler(name, column: "handler") else {
                throw PlanProblem("handler is required for a sampling processor")
            }
            target = HandlerTarget(name: name, handler: found, context: context)
        case .failoverForwarding:
            guard let name = definition.targetStore else { throw PlanProblem("target_store is required for a failover-forwarding processor") }
            target = StoreTarget(store: try store(name, column: "target_store"))
        case .aggregating, .resequencing:
            if let name = definition.targetEndpoint {
                let found = try endpoint(name, column: "target_endpoint")
                used.append(found)
                target = EndpointTarget(endpoint: found, client: client, nonRetryStatusCodes: Set(definition.nonRetryStatusCodes))
            } else if let name = definition.targetStore {
                target = StoreTarget(store: try store(name, column: "target_store"))
            } else {
                throw PlanProblem("target_store or target_endpoint is required for \(definition.kind == .aggregating ? "an" : "a") \(definition.kind.rawValue) processor")
            }
        }
        var plan = ProcessorPlan(
            definition: definition, endpoints: used, source: try store(definition.store, column: "store"), target: target,
            failStore: try definition.failStore.map { try store($0, column: "fail_store") },
            replyHandler: try handler(definition.replyHandler, column: "reply_handler"),
            faultHandler: try handler(definition.faultHandler, column: "fault_handler"),
            deactivateHandler: try handler(definition.deactivateHandler, column: "deactivate_handler"),
            cron: cron)
        // A group processor releases into its target store, or into its hand-off store when it
        // sends to an endpoint.
        plan.handoff = try definition.handoffStore.map { try store($0, column: "target_endpoint's hand-off store") }
        let releaseTarget = plan.handoff ?? (target as? StoreTarget)?.store
        switch definition.kind {
        case .aggregating:
            plan.groupStep = try GroupAggregator(definition: definition, source: plan.source, target: releaseTarget!)
        case .resequencing:
            plan.groupStep = try GroupResequencer(definition: definition, source: plan.source, target: releaseTarget!)
        case .forwarding, .sampling, .failoverForwarding:
            break
        }
        return plan
    }
}

/// Why a processor row cannot run on this node.
struct PlanProblem: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
