import Foundation
import Postgres

/// An aggregating processor's step for each claimed batch (Spring's aggregator): one call of
/// `depot.group_aggregate`, which in one transaction takes the messages out of the store into
/// their correlation groups and releases every group that reached its size (`release_size`, or
/// the count an end marker carried in `release_count_header`) as one message in the target
/// store. So a crash anywhere leaves each message in the store (claimed again later) or in its
/// group, and a group released once or not at all.
struct GroupAggregator: GroupStep {
    let processor: String
    let source: PostgresStore
    let target: PostgresStore
    /// The size that releases a group; nil when only an end marker's count does.
    let releaseSize: Int?
    /// The header that correlates messages; nil = the message's group key.
    let correlationHeader: String?
    /// The header whose value is the group's full size (an end marker); nil = none.
    let releaseCountHeader: String?
    let timeoutMilliseconds: Int?
    let timeoutFromLast: Bool
    let timeoutAction: GroupTimeoutAction
    /// The form of a released group's message (`output_format`).
    let format: AggregateFormat
    /// When this node last looked for timed-out groups: its members look at most every tenth
    /// of the timeout, not once per batch.
    private let lastTimeoutLook = TimeoutLook()

    /// Checks the row's aggregating columns and that both stores live in this PostgreSQL.
    init(definition: ProcessorDefinition, source: any MessageStore, target: any MessageStore) throws {
        let (source, target) = try Self.postgresStores(definition, source: source, target: target, kind: "an aggregating processor")
        guard definition.releaseSize.map({ $0 >= 1 }) ?? (definition.releaseCountHeader != nil || definition.groupTimeoutMilliseconds != nil) else {
            throw PlanProblem("release_size is \(definition.releaseSize.map(String.init) ?? "NULL"); an aggregating processor needs 1 or more "
                              + "(e.g. 1000), or a release_count_header or group_timeout_ms")
        }
        processor = definition.name
        self.source = source
        self.target = target
        releaseSize = definition.releaseSize
        correlationHeader = definition.correlationHeader
        releaseCountHeader = definition.releaseCountHeader
        timeoutMilliseconds = definition.groupTimeoutMilliseconds
        timeoutFromLast = definition.groupTimeoutFromLast
        timeoutAction = definition.groupTimeoutAction
        format = definition.outputFormat
    }

    /// The group `message` belongs to, if it has one.
    func key(of message: Message) -> String? {
        correlationHeader.map { message.headers[$0] } ?? message.groupKey
    }

    /// Moves the batch into its groups and releases the full ones. Returns the ids left to ack:
    /// none, since the messages taken left the store in the same statement. A message without a
    /// correlation key can never join a group: it is dead-lettered, saying which key it lacks.
    func absorb(_ batch: [Message], consumer: String, node: String, metrics: NodeMetrics) async throws -> [UUID] {
        let keyed = batch.filter { key(of: $0) != nil }
        if !keyed.isEmpty {
            try await source.pool.query("""
                SELECT group_key, released_id, released_size FROM depot.group_aggregate(\(source.name), \(consumer), \(keyed.map(\.id)),
                    \(correlationHeader), \(releaseSize.map { Int32(clamping: $0) }), \(target.name), \(releaseCountHeader), p_format => \(format.rawValue))
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

    /// Releases (or dead-letters, as the row says) the groups that waited `group_timeout_ms`,
    /// through `depot.group_release_expired`: each group's outcome commits with the removal of
    /// its members, and nodes looking at once skip each other's groups. A member calls it before
    /// each claim; it looks at most every tenth of the timeout (between 50 ms and 1 s), and an
    /// idle member calls it at least every idle poll.
    func releaseExpired(node: String, metrics: NodeMetrics) async throws {
        guard let timeout = timeoutMilliseconds,
              lastTimeoutLook.due(every: .milliseconds(min(max(timeout / 10, 50), 1000))) else { return }
        let rows = try await source.pool.query("""
            SELECT group_key, released_size, action FROM depot.group_release_expired(\(source.name), \(timeout), \(timeoutFromLast),
                \(timeoutAction.rawValue), \(target.name), \(processor), p_format => \(format.rawValue))
            """)
        for row in rows where try row.decode("action", as: String.self) == GroupTimeoutAction.deadLetter.rawValue {
            for _ in 0..<(try row.decode("released_size", as: Int.self)) { metrics.record(.deadLettered, processor: processor) }
        }
    }
}
