import Foundation
import Postgres

/// A store whose messages live in `depot.messages`, shared by every node on the database.
///
/// Claims use `FOR UPDATE SKIP LOCKED`, so any number of consumers on any number of
/// connections take disjoint messages without waiting on each other.
public struct PostgresStore: MessageStore {
    public let name: String
    let pool: ConnectionPool

    /// A handle on the store `name`; it must have a row in `depot.stores` before messages go in.
    public init(name: String, pool: ConnectionPool) {
        self.name = name
        self.pool = pool
    }

    public func store(_ message: OutgoingMessage) async throws -> StoreReceipt {
        try await store([message])[0]
    }

    public func store(_ messages: [OutgoingMessage]) async throws -> [StoreReceipt] {
        guard !messages.isEmpty else { return [] }
        return try await pool.withConnection { connection in
            guard Self.canInsertDirectly(messages), !DirectInsertRefusals.contains(pool) else {
                return try await store(messages, on: connection)
            }
            return try await insertDirectly(messages, on: connection)
        }
    }

    /// Messages without idempotency or group keys (most of them) need none of store_batch's
    /// checks: one plain INSERT of them all, ids made here for those without, no RETURNING.
    /// A role without INSERT on `depot.messages` (a `depot_producer` member) is refused it and
    /// stores through store_batch from then on (`DirectInsertRefusals`).
    static func canInsertDirectly(_ messages: [OutgoingMessage]) -> Bool {
        messages.allSatisfy { $0.idempotencyKey == nil && $0.groupKey == nil }
    }

    /// The plain INSERT behind `store(_:)`. An id that is already stored (a producer's retry of
    /// a write that committed late) fails the whole statement, and then the batch goes again
    /// through store_batch, which stores the others and answers created = false for it. Runs
    /// outside any transaction, so the failed statement leaves nothing behind.
    private func insertDirectly(_ messages: [OutgoingMessage], on connection: Connection) async throws -> [StoreReceipt] {
        let withIds = messages.withIds()
        do {
            if Self.canCopy(withIds) {
                try await connection.copy(Self.messageCopy, rows: Self.messageCopyRows(store: name, withIds))
            } else {
                try await connection.execute(Self.messageInsert(store: name, withIds))
            }
            return withIds.map { StoreReceipt(id: $0.id!, created: true) }
        } catch let error as PostgresError where error.sqlState == .uniqueViolation {
            return try await store(withIds, on: connection)
        } catch let error as PostgresError where error.sqlState == .insufficientPrivilege {
            DirectInsertRefusals.insert(pool)
            return try await store(withIds, on: connection)
        } catch let error as PostgresError where error.sqlState == .foreignKeyViolation {
            throw StoreError.undeclared(name)  // depot.hold_store, from the insert trigger
        }
    }

    /// Stores messages on the caller's connection, inside whatever transaction it has open:
    /// commit and they exist, roll back and they never did.
    public func store(_ messages: [OutgoingMessage], on connection: Connection) async throws -> [StoreReceipt] {
        guard !messages.isEmpty else { return [] }
        do {
            let rows = try await connection.query(Self.messageStoreBatch(store: name, messages))
            return try rows.map { StoreReceipt(id: try $0.decode(at: 0), created: try $0.decode(at: 1)) }
        } catch let error as PostgresError where error.sqlState == .undefinedObject {
            throw StoreError.undeclared(name)
        } catch let error as PostgresError where error.sqlState == .storeNotAllowed {
            throw StoreError(.notAllowed, error.message, hint: error.hint)
        }
    }

    public func claim(limit: Int, consumer: String, lease: Duration) async throws -> [Message] {
        try StoreError.checkLimit(limit)
        let statement = Self.messageClaim(store: name, limit: limit, consumer: consumer, lease: lease)
        let rows = try await pool.withConnection { try await ClaimPlan.run(statement, on: $0) }
        // RETURNING has no order; hand them out in delivery order.
        return try rows.map(Self.message(from:)).sorted(by: Self.deliveryOrder)
    }

    public func claimHead(consumer: String, lease: Duration) async throws -> Message? {
        let statement = Self.messageClaimHead(store: name, consumer: consumer, lease: lease)
        return try await pool.withConnection { try await ClaimPlan.run(statement, on: $0) }.map(Self.message(from:)).first
    }

    /// One statement, one commit: the ack's DELETE and the next claim share a transaction.
    /// Both claims run through `ClaimPlan`, which keeps their plan on the claim index.
    public func ackAndClaim(_ ids: [UUID], limit: Int, consumer: String, lease: Duration) async throws -> [Message] {
        try StoreError.checkLimit(limit)
        let statement = Self.messageClaim(store: name, limit: limit, consumer: consumer, lease: lease, acking: ids)
        let rows = try await pool.withConnection { try await ClaimPlan.run(statement, on: $0) }
        return try rows.map(Self.message(from:)).sorted(by: Self.deliveryOrder)
    }

    @discardableResult
    public func ack(_ ids: [UUID], consumer: String) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try await pool.query("""
            DELETE FROM depot.messages WHERE id = ANY(\(ids)) AND locked_by = \(consumer)
            """).affectedRows
    }

    @discardableResult
    public func release(_ id: UUID, consumer: String, retryAt: Date, error: String?) async throws -> Bool {
        try await pool.query("""
            UPDATE depot.messages
            SET locked_by = NULL, locked_until = NULL, available_at = \(retryAt), last_error = coalesce(\(error), last_error)
            WHERE id = \(id) AND locked_by = \(consumer)
            """).affectedRows == 1
    }

    @discardableResult
    public func giveBack(_ ids: [UUID], consumer: String) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try await pool.query("""
            UPDATE depot.messages SET locked_by = NULL, locked_until = NULL, attempts = greatest(attempts - 1, 0)
            WHERE id = ANY(\(ids)) AND locked_by = \(consumer)
            """).affectedRows
    }

    @discardableResult
    public func extendLeases(_ ids: [UUID], consumer: String, lease: Duration) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try await pool.query("""
            UPDATE depot.messages SET locked_until = now() + make_interval(secs => \(lease.seconds))
            WHERE id = ANY(\(ids)) AND locked_by = \(consumer)
            """).affectedRows
    }

    @discardableResult
    public func deadLetter(_ id: UUID, consumer: String, reason: DeadLetterReason) async throws -> Bool {
        // One statement: the row leaves depot.messages only if it lands in depot.dead_letters.
        try await pool.query("""
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
            """).affectedRows == 1
    }

    /// Within one database the row changes store in place, in one statement; elsewhere it is copied.
    @discardableResult
    public func move(_ message: Message, consumer: String, to target: any MessageStore) async throws -> Bool {
        // Same database (any pool on it): copying would collide with the source row itself.
        guard let target = target as? PostgresStore,
              target.pool === pool || target.pool.configuration.connectionString == pool.configuration.connectionString else {
            return try await moveByCopying(message, consumer: consumer, to: target)
        }
        guard target.name != name else {
            throw StoreError(.invalidArgument, "cannot move message \(message.id) from store \"\(name)\" into itself")
        }
        do {
            // The NOTIFY wakes the target store's idle members, as an insert would.
            let rows = try await pool.query("""
                WITH moved AS (
                    UPDATE depot.messages
                    SET store = \(target.name), locked_by = NULL, locked_until = NULL, available_at = now(), attempts = 0
                    WHERE id = \(message.id) AND locked_by = \(consumer)
                    RETURNING 1
                )
                SELECT CASE WHEN EXISTS (SELECT 1 FROM moved) THEN pg_notify('depot_messages', \(target.name)) END,
                       EXISTS (SELECT 1 FROM moved)
                """)
            return try rows.first?.decode(at: 1, as: Bool.self) ?? false
        } catch let error as PostgresError where error.sqlState == .foreignKeyViolation {
            throw StoreError.undeclared(target.name)
        }
    }

    public var mayHaveUnannouncedWrites: Bool { true }

    /// An insert that skipped its NOTIFY holds a shared lock until it ends (migration 0008).
    public func hasUnannouncedWrites() async throws -> Bool {
        try await pool.query("SELECT depot.has_unannounced_inserts(\(name))").first?.decode(at: 0, as: Bool.self) ?? false
    }

    public func counts() async throws -> StoreCounts {
        let rows = try await pool.query("""
            SELECT ready, delayed, in_flight, dead_letters FROM depot.store_stats WHERE store = \(name)
            """)
        guard let row = rows.first else { throw StoreError.undeclared(name) }
        let (ready, delayed, inFlight, dead) = try row.decode((Int, Int, Int, Int).self)
        return StoreCounts(ready: ready, delayed: delayed, inFlight: inFlight, deadLetters: dead)
    }

    public func peek(limit: Int) async throws -> [Message] {
        try StoreError.checkLimit(limit)
        let rows = try await pool.query("""
            SELECT \(unsafeRaw: Self.messageColumns) FROM depot.messages
            WHERE store = \(name) ORDER BY priority DESC, seq LIMIT \(limit)
            """)
        return try rows.map(Self.message(from:))
    }

    @discardableResult
    public func purge() async throws -> Int {
        try await pool.query("DELETE FROM depot.messages WHERE store = \(name)").affectedRows
    }

    // MARK: - Statements

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
}
