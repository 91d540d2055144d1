import Foundation
import Postgres

/// Every statement on `depot.messages` that the Swift code sends (the claim's, the producer's
/// inserts, the settling of what a member claimed, the lease-guarded calls of HTTP consumers),
/// named noun-first, and the row decoder. `PostgresStore`, `ConsumerLeases` and the group
/// processors call these.
extension PostgresStore {

    static let messageColumns = """
        id, store, payload, headers, content_type, priority, created_at, available_at, attempts, \
        group_key, idempotency_key, last_error, seq
        """

    /// `messageColumns` prefixed with `m.`, for statements that join.
    static let qualifiedMessageColumns = messageColumns.split(separator: ",")
        .map { "m." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")

    /// Every message must have its id. The insert trigger checks the store is declared.
    static func messageInsert(store: String, _ messages: [OutgoingMessage]) -> SQL {
        if messages.count == 1 { return messageInsertOne(store: store, messages[0]) }
        let ids = messages.map { $0.id! }
        let payloads = messages.map(\.payload)
        let headers = messages.map(\.headers)
        let contentTypes = messages.map(\.contentType)
        let priorities = messages.map { Int32(clamping: $0.priority) }
        let delays = messages.map { Int(max($0.delay.milliseconds, 0)) }
        return """
            INSERT INTO depot.messages (id, store, payload, headers, content_type, priority, available_at)
            SELECT u.id, \(store), u.payload, u.headers, u.content_type, u.priority, now() + u.delay_ms * interval '1 millisecond'
            FROM unnest(\(ids), \(payloads), \(headers), \(contentTypes), \(priorities), \(delays))
                 WITH ORDINALITY AS u (id, payload, headers, content_type, priority, delay_ms, ord)
            ORDER BY u.ord
            """
    }

    /// One message by a plain VALUES row: a producer storing one message at a time (and group
    /// commit's lone caller) pays for no arrays to encode and no unnest to plan and run, which for
    /// one row cost about a tenth of its store.
    static func messageInsertOne(store: String, _ message: OutgoingMessage) -> SQL {
        let delay = Int(max(message.delay.milliseconds, 0))
        return """
            INSERT INTO depot.messages (id, store, payload, headers, content_type, priority, available_at)
            VALUES (\(message.id!), \(store), \(message.payload), \(message.headers), \(message.contentType),
                    \(Int32(clamping: message.priority)), now() + \(delay) * interval '1 millisecond')
            """
    }

    /// From this many messages on, a batch goes in by COPY: PostgreSQL inserts copied rows a page
    /// at a time, a quarter less of its work for 1,000 messages, but COPY costs a second round
    /// trip, which smaller batches do not win back.
    static let copyThreshold = 64

    /// COPY leaves available_at and created_at to their default, the server's now() (as the
    /// INSERT does for a message without delay): a delay needs the server's clock, so a batch
    /// with one takes the INSERT.
    static func canCopy(_ messages: [OutgoingMessage]) -> Bool {
        messages.count >= copyThreshold && messages.allSatisfy { $0.delay <= .zero }
    }

    static let messageCopy: SQL = "COPY depot.messages (id, store, payload, headers, content_type, priority) FROM STDIN (FORMAT binary)"

    /// The rows of `messageCopy`, in the columns' order. Every message must have its id.
    static func messageCopyRows(store: String, _ messages: [OutgoingMessage]) -> BinaryCopyRows {
        let bytes = messages.reduce(0) { $0 + $1.payload.count + 80 + $1.headers.count * 32 }
        var rows = BinaryCopyRows(columns: 6, reservingCapacity: bytes)
        for message in messages {
            rows.startRow()
            rows.append(message.id!)
            rows.append(store)
            rows.append(message.payload)
            rows.append(message.headers)
            rows.append(message.contentType)
            rows.append(Int32(clamping: message.priority))
        }
        return rows
    }

    static func messageStoreBatch(store: String, _ messages: [OutgoingMessage]) -> SQL {
        let payloads = messages.map(\.payload)
        let headers = messages.map(\.headers)
        let contentTypes = messages.map(\.contentType)
        let priorities = messages.map { Int32(clamping: $0.priority) }
        let delays = messages.map { Int(max($0.delay.milliseconds, 0)) }
        let groupKeys = messages.map(\.groupKey)
        let keys = messages.map(\.idempotencyKey)
        let ids = messages.map(\.id)
        return """
            SELECT id, created FROM depot.store_batch(\(store), \(payloads), \(headers), \(contentTypes), \
            \(priorities), \(delays), \(groupKeys), \(keys), \(ids))
            """
    }

    /// Sent through `ClaimPlan.run`, which keeps the plan an ordered scan of `messages_claim_order`.
    /// Why a CTE: LIMIT inside the locking SELECT bounds what is locked to what is claimed.
    /// The NOT EXISTS keeps a group to one message at a time: only a group's oldest message is
    /// claimable, and it stays oldest (blocking the rest) while leased or waiting for a retry;
    /// a group with any live lease is skipped outright, whatever the order rows committed in.
    /// `acking`: ids the consumer delivered, deleted in the same statement (and never re-claimed
    /// by it, even if their lease ran out); empty for a plain claim. The delete finishes before
    /// the claim locks anything (the one-time `count(*) FROM acked` gate): a claim can leave a
    /// lock on a row another member has leased (it locks the row's newest version, then finds it
    /// leased), and two statements that each waited in their delete while holding such a lock
    /// from their claim would deadlock. Once its delete is done a statement never waits again.
    ///
    /// Why the limit is written into the text: with `LIMIT $n` the generic plan must guess the
    /// row count (a tenth of the table) and comes out as a hash join over a scan of every row, so
    /// PostgreSQL planned the statement afresh on every call. With the number in the text the generic plan is the
    /// custom one and is planned once per connection; a processor's limit never changes, so each
    /// connection prepares one text per limit. A plain claim has its own text without the
    /// delete, since an empty array would make the custom plan look cheaper and win again.
    /// Why `ctid`: the row is locked by this statement, so its tuple cannot move before the
    /// UPDATE, which then fetches it straight from its page instead of descending the primary
    /// key once per row. A tuple that a transaction committed after this statement began
    /// updated (locked here in its newest version, which this statement's snapshot cannot see)
    /// is left as it is, neither leased nor counted, for a later claim.
    /// Why the acked ids are compared only with expired leases: a row being acked is leased to
    /// this consumer, so it never has a NULL `locked_until`; and the array is a parameter, which
    /// PostgreSQL does not hash, so each comparison walks all of it.
    static func messageClaim(store: String, limit: Int, consumer: String, lease: Duration, acking: [UUID] = []) -> SQL {
        let order = "ORDER BY m.priority DESC, m.seq LIMIT \(limit) FOR UPDATE SKIP LOCKED"
        let leaseNext: SQL = """
            UPDATE depot.messages m
            SET locked_by = \(consumer), locked_until = now() + make_interval(secs => \(lease.seconds)),
                attempts = m.attempts + 1
            FROM next WHERE m.ctid = next.ctid
            RETURNING \(unsafeRaw: qualifiedMessageColumns)
            """
        guard !acking.isEmpty else {
            return """
                WITH next AS (
                    SELECT m.ctid FROM depot.messages m
                    WHERE m.store = \(store) AND (m.locked_until IS NULL OR m.locked_until <= now()) AND \(unsafeRaw: dueAndFirstOfGroup)
                    \(unsafeRaw: order)
                )
                \(leaseNext)
                """
        }
        return """
            WITH acked AS (
                DELETE FROM depot.messages WHERE id = ANY(\(acking)) AND locked_by = \(consumer) RETURNING 1
            ),
            next AS (
                SELECT m.ctid FROM depot.messages m
                WHERE (SELECT count(*) FROM acked) >= 0
                  AND m.store = \(store)
                  AND (m.locked_until IS NULL OR (m.locked_until <= now() AND m.id <> ALL(\(acking))))
                  AND \(unsafeRaw: dueAndFirstOfGroup)
                \(unsafeRaw: order)
            )
            \(leaseNext)
            """
    }

    /// Sent through `ClaimPlan.run`, so the head is read from `messages_claim_order`, not found by
    /// sorting the store. The head of the store in delivery order, leased only when it is due and free. Read without
    /// a lock first, then locked with SKIP LOCKED: a member that finds the head locked by another
    /// claims nothing rather than the message behind it.
    static func messageClaimHead(store: String, consumer: String, lease: Duration) -> SQL {
        """
        WITH head AS (
            SELECT m.id FROM depot.messages m WHERE m.store = \(store) ORDER BY m.priority DESC, m.seq LIMIT 1
        ),
        next AS (
            SELECT m.ctid FROM depot.messages m JOIN head ON m.id = head.id
            WHERE (m.locked_until IS NULL OR m.locked_until <= now()) AND m.available_at <= now()
            FOR UPDATE OF m SKIP LOCKED
        )
        UPDATE depot.messages m
        SET locked_by = \(consumer), locked_until = now() + make_interval(secs => \(lease.seconds)), attempts = m.attempts + 1
        FROM next WHERE m.ctid = next.ctid
        RETURNING \(unsafeRaw: qualifiedMessageColumns)
        """
    }

    /// What a claimable message is besides free of leases: due, and first of its group.
    private static let dueAndFirstOfGroup = """
        m.available_at <= now()
          AND (m.group_key IS NULL OR NOT EXISTS (
                SELECT 1 FROM depot.messages e
                WHERE e.store = m.store AND e.group_key = m.group_key
                  AND (e.seq < m.seq OR e.locked_until > now())))
        """

    static func message(from row: Row) throws -> Message {
        Message(
            id: try row.decode("id"),
            store: try row.decode("store"),
            payload: try row.decode("payload"),
            headers: try row.decode("headers"),
            contentType: try row.decode("content_type"),
            priority: try row.decode("priority"),
            createdAt: try row.decode("created_at"),
            availableAt: try row.decode("available_at"),
            attempts: try row.decode("attempts"),
            groupKey: try row.decode("group_key"),
            idempotencyKey: try row.decode("idempotency_key"),
            lastError: try row.decode("last_error"),
            sequence: try row.decode("seq"))
    }

    static func deliveryOrder(_ a: Message, _ b: Message) -> Bool {
        a.priority != b.priority ? a.priority > b.priority : a.sequence < b.sequence
    }

    static func messageAck(_ ids: [UUID], consumer: String) -> SQL {
        "DELETE FROM depot.messages WHERE id = ANY(\(ids)) AND locked_by = \(consumer)"
    }

    static func messageRelease(_ id: UUID, consumer: String, retryAt: Date, error: String?) -> SQL {
        """
        UPDATE depot.messages
        SET locked_by = NULL, locked_until = NULL, available_at = \(retryAt), last_error = coalesce(\(error), last_error)
        WHERE id = \(id) AND locked_by = \(consumer)
        """
    }

    /// Claimed messages back untried: the claim's attempt not counted.
    static func messageGiveBack(_ ids: [UUID], consumer: String) -> SQL {
        """
        UPDATE depot.messages SET locked_by = NULL, locked_until = NULL, attempts = greatest(attempts - 1, 0)
        WHERE id = ANY(\(ids)) AND locked_by = \(consumer)
        """
    }

    static func messageExtendLeases(_ ids: [UUID], consumer: String, lease: Duration) -> SQL {
        """
        UPDATE depot.messages SET locked_until = now() + make_interval(secs => \(lease.seconds))
        WHERE id = ANY(\(ids)) AND locked_by = \(consumer)
        """
    }

    /// One statement: the row leaves depot.messages only if it lands in depot.dead_letters.
    static func messageDeadLetter(_ id: UUID, consumer: String, reason: DeadLetterReason) -> SQL {
        """
        WITH gone AS (
            DELETE FROM depot.messages WHERE id = \(id) AND locked_by = \(consumer)
            RETURNING id, store, payload, headers, content_type, priority, group_key, idempotency_key,
                      created_at, attempts, last_error
        )
        INSERT INTO depot.dead_letters (id, store, payload, headers, content_type, priority, group_key,
            idempotency_key, created_at, attempts, reason, last_error, status_code, processor, node)
        SELECT id, store, payload, headers, content_type, priority, group_key, idempotency_key, created_at,
               attempts, \(reason.reason), coalesce(\(reason.lastError), last_error), \(reason.statusCode.map(Int32.init)),
               \(reason.processor), \(reason.node)
        FROM gone
        ON CONFLICT (id) DO UPDATE SET reason = excluded.reason, last_error = excluded.last_error,
            status_code = excluded.status_code, processor = excluded.processor, node = excluded.node,
            attempts = excluded.attempts, dead_at = now()
        """
    }

    /// The row changes store in place; the NOTIFY wakes the target store's idle members, as an
    /// insert would. Answers whether it moved.
    static func messageMove(_ id: UUID, consumer: String, to target: String) -> SQL {
        """
        WITH moved AS (
            UPDATE depot.messages
            SET store = \(target), locked_by = NULL, locked_until = NULL, available_at = now(), attempts = 0
            WHERE id = \(id) AND locked_by = \(consumer)
            RETURNING 1
        )
        SELECT CASE WHEN EXISTS (SELECT 1 FROM moved) THEN pg_notify('depot_messages', \(target)) END,
               EXISTS (SELECT 1 FROM moved)
        """
    }

    static func messagePeek(store: String, limit: Int) -> SQL {
        """
        SELECT \(unsafeRaw: messageColumns) FROM depot.messages
        WHERE store = \(store) ORDER BY priority DESC, seq LIMIT \(limit)
        """
    }

    static func messagePurge(store: String) -> SQL { "DELETE FROM depot.messages WHERE store = \(store)" }

    // MARK: Lease-guarded, for consumers outside a node (ConsumerLeases), each answering the ids it acted on

    /// `depot.claim` checks the store, consumer, limit and lease as the SQL API does, and runs
    /// the store's claim with sorting off; its RETURNING has no order, hence the ORDER BY.
    static func messageClaimLeased(store: String, limit: Int, consumer: String, lease: Duration) -> SQL {
        """
        SELECT \(unsafeRaw: messageColumns), locked_until
        FROM depot.claim(\(store), \(consumer), \(Int32(clamping: limit)), make_interval(secs => \(lease.seconds)))
        ORDER BY priority DESC, seq
        """
    }

    static func messageAckLeased(_ ids: [UUID], store: String, consumer: String) -> SQL {
        "DELETE FROM depot.messages WHERE id = ANY(\(ids)) AND store = \(store) AND locked_by = \(consumer) RETURNING id"
    }

    /// Released for now, they wake the store's waiting consumers (a release is an UPDATE, which
    /// the insert trigger does not announce); identical notifications of one transaction are
    /// delivered once.
    static func messageReleaseLeased(_ ids: [UUID], store: String, consumer: String, retryIn: Duration, error: String?) -> SQL {
        let retryMilliseconds = Int(max(retryIn.milliseconds, 0))
        return """
            WITH released AS (
                UPDATE depot.messages
                SET locked_by = NULL, locked_until = NULL,
                    available_at = now() + \(retryMilliseconds) * interval '1 millisecond',
                    last_error = coalesce(\(error), last_error)
                WHERE id = ANY(\(ids)) AND store = \(store) AND locked_by = \(consumer)
                RETURNING id
            )
            SELECT id, CASE WHEN \(retryMilliseconds) = 0 THEN pg_notify('depot_messages', \(store)) END FROM released
            """
    }

    static func messageExtendLeased(_ ids: [UUID], store: String, consumer: String, lease: Duration) -> SQL {
        """
        UPDATE depot.messages SET locked_until = now() + make_interval(secs => \(lease.seconds))
        WHERE id = ANY(\(ids)) AND store = \(store) AND locked_by = \(consumer)
        RETURNING id, locked_until
        """
    }

    // MARK: Group processors

    /// A resequence store's fixed correlation key set as the group key of the claimed messages
    /// about to be placed, found by id alone: the store as an index condition made the planner
    /// read the store's whole claim index (see migration 0022).
    static func messageGroupKeySet(_ ids: [UUID], key: String, store: String, consumer: String) -> SQL {
        """
        UPDATE depot.messages SET group_key = \(key)
        WHERE id = ANY(\(ids)) AND (store = \(store)) IS TRUE AND locked_by = \(consumer)
        """
    }
}
