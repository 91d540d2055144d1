import Foundation

/// What a group processor (aggregating, resequencing) does in place of delivering message by
/// message: its members hand it each claimed batch, and let it look for timed-out groups before
/// each claim. Both steps are single statements, so a crash leaves every message in its store, its
/// group or the target, never two of them.
protocol GroupStep: Sendable {
    /// Takes the batch into its groups and lets out what is due; returns the ids left to ack.
    /// `node` names this node in log lines.
    func absorb(_ batch: [Message], consumer: String, node: String, metrics: NodeMetrics) async throws -> [UUID]
    /// Releases what waited too long, when the row has a timeout and a look is due.
    func releaseExpired(node: String, metrics: NodeMetrics) async throws
}

extension GroupStep {
    /// The source and target (the target store, or the hand-off store of a processor sending to
    /// an endpoint) of a group processor as PostgreSQL stores of one database: its groups and
    /// the statements that release them live there. `kind` names the processor in the
    /// error ("an aggregating processor").
    static func postgresStores(_ definition: ProcessorDefinition, source: any MessageStore, target: any MessageStore,
                               kind: String) throws -> (PostgresStore, PostgresStore) {
        guard let source = source as? PostgresStore, let target = target as? PostgresStore,
              source.pool === target.pool || source.pool.configuration.connectionString == target.pool.configuration.connectionString else {
            let targetColumn = definition.handoffStore == nil ? "target_store" : "its hand-off store"
            throw PlanProblem("\(kind) keeps its groups in PostgreSQL: store \"\(definition.store)\" and \(targetColumn) "
                              + "\"\(target.name)\" must both be postgres stores of this database")
        }
        return (source, target)
    }
}
