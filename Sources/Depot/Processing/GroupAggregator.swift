import Foundation
import Postgres

/// An aggregating processor's step for each claimed batch (Spring's aggregator): one call of
/// `depot.group_aggregate`, which in one transaction takes the messages out of the store into
/// their correlation groups and releases every group that reached its size (`release_size`, or
/// the count an end marker carried in `release_count_header`) as one message in the target
/// store. So a crash anywhere leaves each message in the store (claimed again later) or in its
/// group, and a group released once or not at all.
struct GroupAggregator: Sendable {
    let processor: String
    let source: PostgresStore
    let target: PostgresStore
    /// The size that releases a group; nil when only an end marker's count does.
    let releaseSize: Int?
    /// The header that correlates messages; nil = the message's group key.
    let correlationHeader: String?
    /// The header whose value is the group's full size (an end marker); nil = none.
    let releaseCountHeader: String?

    /// Checks the row's aggregating columns and that both stores live in this PostgreSQL.
    init(definition: ProcessorDefinition, source: any MessageStore, target: any MessageStore) throws {
        guard let source = source as? PostgresStore, let target = target as? PostgresStore,
              source.pool === target.pool || source.pool.configuration.connectionString == target.pool.configuration.connectionString else {
            throw PlanProblem("an aggregating processor keeps its groups in PostgreSQL: store \"\(definition.store)\" and target_store "
                              + "\"\(definition.targetStore ?? "")\" must both be postgres stores of this database")
        }
        guard definition.releaseSize.map({ $0 >= 1 }) ?? (definition.releaseCountHeader != nil) else {
            throw PlanProblem("release_size is \(definition.releaseSize.map(String.init) ?? "NULL"); an aggregating processor needs 1 or more "
                              + "(e.g. 1000), or a release_count_header")
        }
        processor = definition.name
        self.source = source
        self.target = target
        releaseSize = definition.releaseSize
        correlationHeader = definition.correlationHeader
        releaseCountHeader = definition.releaseCountHeader
    }

    /// The group `message` belongs to, if it has one.
    func key(of message: Message) -> String? {
        correlationHeader.map { message.headers[$0] } ?? message.groupKey
    }

    /// Moves the batch into its groups and releases the full ones. Returns the ids left to ack:
    /// none, since the messages taken left the store in the same statement. A message without a
    /// correlation key can never join a group: it is dead-lettered, saying which key it lacks.
    func absorb(_ batch: [Message], consumer: String, metrics: NodeMetrics) async throws -> [UUID] {
        let keyed = batch.filter { key(of: $0) != nil }
        if !keyed.isEmpty {
            try await source.pool.query("""
                SELECT group_key, released_id, released_size FROM depot.group_aggregate(\(source.name), \(consumer), \(keyed.map(\.id)),
                    \(correlationHeader), \(releaseSize.map { Int32(clamping: $0) }), \(target.name), \(releaseCountHeader))
                """)
            for _ in keyed { metrics.record(.delivered, processor: processor) }
        }
        let missing = correlationHeader.map { "header \"\($0)\"" } ?? "a group key"
        for message in batch where key(of: message) == nil {
            let reason = DeadLetterReason("no correlation key", lastError: "message has no \(missing) to correlate it by", processor: processor)
            if try await source.deadLetter(message.id, consumer: consumer, reason: reason) {
                metrics.record(.deadLettered, processor: processor)
            }
        }
        return []
    }
}
