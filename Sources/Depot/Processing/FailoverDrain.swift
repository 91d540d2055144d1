import Foundation

/// The failover-forwarding processors a node runs without a row: a store with
/// `guaranteed_delivery` whose `failover_store` is local to each node (`memory` or `journal`)
/// is drained back into it by every node, in order, once the database answers again.
///
/// An operator's own processor on the failover store (seed 003's failover forwarding
/// processor) takes precedence on the nodes that run it.
enum FailoverDrain {
    /// Drain names hold a "/", which row names may not, so they never clash with a row.
    static let namePrefix = "failover-drain/"

    /// The drains node `node` should run for `snapshot`.
    static func definitions(for snapshot: ProcessingSnapshot, node: String) -> [ProcessorDefinition] {
        let drainedByRows = Set(snapshot.processors.filter { $0.runs(on: node) }.map(\.store))
        return snapshot.stores.values.sorted { $0.name < $1.name }.compactMap { primary in
            guard primary.guaranteedDelivery, let failover = primary.failoverStore,
                  snapshot.stores[failover]?.kind.isLocalToNode == true,
                  !drainedByRows.contains(failover) else { return nil }
            var drain = ProcessorDefinition(name: namePrefix + failover, kind: .failoverForwarding, store: failover)
            drain.targetStore = primary.name
            drain.intervalMilliseconds = 0
            // A batch is one store into the primary and one journal fsync (StoreTarget.copy):
            // larger batches spend fewer commits per message.
            drain.batchSize = 500
            // Never gives up and never deactivates: the primary comes back sooner or later.
            drain.maxDeliveryAttempts = 0
            drain.retryIntervalMilliseconds = 1000
            return drain
        }
    }
}
