import Foundation
import Postgres

/// A resequencing processor's step for each claimed batch (Spring's resequencer): one call of
/// `depot.group_resequence`, which in one transaction takes the messages out of the store into
/// their correlation groups and lets each group's messages into the target store in the order of
/// their sequence numbers, from the group's last released number on. So whichever node dies when,
/// each message is in the store (claimed again later), held in its group or in the target, once,
/// and a group's messages reach the target in order: its releases take turns on the group's row.
struct GroupResequencer: GroupStep {
    let processor: String
    let source: PostgresStore
    let target: PostgresStore
    /// The header that correlates messages; nil = the message's group key.
    let correlationHeader: String?
    /// One key for every message (`correlation_key`), in place of the header: the whole store
    /// is one sequence.
    let correlationKey: String?
    /// The header holding each message's sequence number, 1 and up.
    let sequenceHeader: String
    /// A message held this long behind a missing number goes out, the gap skipped; nil = never.
    let gapTimeoutMilliseconds: Int?
    /// When this node last looked for groups whose gap timed out (at most every tenth of the
    /// timeout, between 50 ms and 1 s, shared by the processor's members).
    private let lastTimeoutLook = TimeoutLook()

    /// Checks the row's resequencing columns and that both stores live in this PostgreSQL.
    init(definition: ProcessorDefinition, source: any MessageStore, target: any MessageStore) throws {
        let (source, target) = try Self.postgresStores(definition, source: source, target: target, kind: "a resequencing processor")
        guard let sequenceHeader = definition.sequenceHeader, !sequenceHeader.isEmpty else {
            throw PlanProblem("sequence_header is NULL; a resequencing processor needs the header holding each message's number, "
                              + "e.g. 'Depot-Sequence-Number'")
        }
        if let timeout = definition.gapTimeoutMilliseconds, timeout < 0 {
            throw PlanProblem("gap_timeout_ms is \(timeout); it must be 0 or more, or NULL to wait for every gap to fill")
        }
        processor = definition.name
        self.source = source
        self.target = target
        correlationHeader = definition.correlationHeader
        correlationKey = definition.correlationKey
        self.sequenceHeader = sequenceHeader
        gapTimeoutMilliseconds = definition.gapTimeoutMilliseconds
    }

    /// The group `message` belongs to, if it has one.
    func key(of message: Message) -> String? {
        correlationKey ?? correlationHeader.map { message.headers[$0] } ?? message.groupKey
    }

    /// The message's sequence number: its header as a plain decimal from 1 up, at most 18 digits
    /// (what `depot.sequence_number` accepts), else nil.
    func sequenceNumber(of message: Message) -> Int64? {
        guard let text = message.headers[sequenceHeader], (1...18).contains(text.utf8.count),
              text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let number = Int64(text), number >= 1 else { return nil }
        return number
    }

    /// Moves the batch into its groups and lets out what now runs in order. Returns no ids to
    /// ack: the messages taken left the store in the same statement. A message without a
    /// correlation key or a sequence number can never be placed: it is dead-lettered, saying
    /// which it lacks.
    func absorb(_ batch: [Message], consumer: String, node: String, metrics: NodeMetrics) async throws -> [UUID] {
        let placeable = batch.filter { key(of: $0) != nil && sequenceNumber(of: $0) != nil }
        if !placeable.isEmpty {
            let statement: SQL = """
                SELECT group_key, released, dead_lettered, gaps FROM depot.group_resequence(\(source.name), \(consumer),
                    \(placeable.map(\.id)), \(correlationHeader), \(sequenceHeader), \(gapTimeoutMilliseconds), \(target.name), \(processor))
                """
            let rows: Rows
            if let correlationKey {
                // The fixed key becomes the messages' group key, which group_resequence correlates
                // by when there is no header, in the transaction that places them.
                rows = try await source.pool.withTransaction { connection in
                    try await connection.query(PostgresStore.messageGroupKeySet(placeable.map(\.id), key: correlationKey,
                                                                                store: source.name, consumer: consumer))
                    return try await connection.query(statement)
                }
            } else {
                rows = try await source.pool.query(statement)
            }
            try record(rows, node: node, metrics: metrics)
        }
        let missingKey = correlationHeader.map { "header \"\($0)\"" } ?? "a group key"
        for message in batch where !placeable.contains(where: { $0.id == message.id }) {
            let reason = key(of: message) == nil
                ? DeadLetterReason("no correlation key", lastError: "message has no \(missingKey) to correlate it by", processor: processor)
                : DeadLetterReason("no sequence number", lastError: "message has no header \"\(sequenceHeader)\" holding a number from 1 up, "
                                   + "got \(message.headers[sequenceHeader].map { "\"\($0)\"" } ?? "none")", processor: processor)
            if try await source.deadLetter(message.id, consumer: consumer, reason: reason) {
                metrics.record(.deadLettered, processor: processor)
            }
        }
        return []
    }

    /// Lets out the groups whose oldest held message waited `gap_timeout_ms`, past their gaps,
    /// through `depot.group_resequence_expired`: each group's release commits with the removal of
    /// its members, and nodes looking at once skip each other's groups. A member calls it before
    /// each claim, so an idle member looks at least every idle poll.
    func releaseExpired(node: String, metrics: NodeMetrics) async throws {
        guard let timeout = gapTimeoutMilliseconds,
              lastTimeoutLook.due(every: .milliseconds(min(max(timeout / 10, 50), 1000))) else { return }
        let rows = try await source.pool.query("""
            SELECT group_key, released, dead_lettered, gaps FROM depot.group_resequence_expired(\(source.name), \(sequenceHeader),
                \(timeout), \(target.name), \(processor))
            """)
        try record(rows, node: node, metrics: metrics)
    }

    /// Counts what went out and what was dead-lettered, and logs each gap skipped (operators find
    /// them in `depot.sequence_gaps` and on the next message's `Depot-Sequence-Gap` header).
    private func record(_ rows: Rows, node: String, metrics: NodeMetrics) throws {
        for row in rows {
            let (group, released, dead, gaps) = try row.decode((String, Int, Int, [String]).self)
            for _ in 0..<released { metrics.record(.delivered, processor: processor) }
            for _ in 0..<dead { metrics.record(.deadLettered, processor: processor) }
            if !gaps.isEmpty {
                NodeLog.warning(node: node, "processor \(processor): group \(group) skipped missing sequence numbers "
                                + "\(gaps.joined(separator: ", ")) after \(gapTimeoutMilliseconds ?? 0) ms")
            }
        }
    }
}
