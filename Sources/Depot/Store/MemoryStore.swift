import Foundation

/// A store held in this process's memory: a development default and the seeds' failover store.
///
/// Same semantics as `PostgresStore` (leases, priorities, groups, idempotency keys); nothing
/// survives the process, and other nodes cannot see it.
public actor MemoryStore: MessageStore {
    public nonisolated let name: String
    private var messages: [UUID: Entry] = [:]
    /// The messages in delivery order, for claims and peeks.
    private var queue = DeliveryQueue()
    private var keys: [String: UUID] = [:]
    private var deadLetters: [UUID: (Message, DeadLetterReason)] = [:]
    private var nextSequence = 1
    let now: @Sendable () -> Date
    /// The store's message groups (`MessageGroupStore`, MemoryGroups.swift).
    var groups = MemoryGroups()
    /// Groups whose expiry callback is running.
    var expiringGroups: Set<String> = []

    private struct Entry {
        var message: Message
        var lockedBy: String?
        var lockedUntil: Date?
        func isLeased(at time: Date) -> Bool { lockedUntil.map { $0 > time } ?? false }
    }

    /// - Parameter now: the clock; tests may pass their own. Default `Date.init`.
    public init(name: String, now: @escaping @Sendable () -> Date = { Date() }) {
        self.name = name
        self.now = now
    }

    /// A store holding `restored` as they were stored (ids, dates, priorities, keys kept), in
    /// that arrival order and ready to claim, and remembering `keys`: what a journal replays.
    init(name: String, restoring restored: [Message], keys: [String: UUID], now: @escaping @Sendable () -> Date = { Date() }) {
        var entries: [UUID: Entry] = [:]
        for (index, message) in restored.enumerated() {
            var message = message
            message.store = name
            message.attempts = 0
            message.sequence = index + 1
            entries[message.id] = Entry(message: message)
        }
        // Arrival order is replayed order, so each priority's line is built in order.
        var queue = DeliveryQueue()
        for message in entries.values.map(\.message).sorted(by: { $0.sequence < $1.sequence }) { queue.append(message) }
        self.name = name
        self.now = now
        self.keys = keys
        self.queue = queue
        messages = entries
        nextSequence = restored.count + 1
    }

    public func store(_ message: OutgoingMessage) async throws -> StoreReceipt {
        try await store([message])[0]
    }

    public func store(_ batch: [OutgoingMessage]) async throws -> [StoreReceipt] {
        store(batch, logging: { _ in () }).receipts
    }

    /// `store`, handing the messages it created to `log` inside the actor, before any other call
    /// can see them: a write-ahead log records changes in the order they happened.
    func store<Logged: Sendable>(_ batch: [OutgoingMessage], logging log: @Sendable ([Message]) -> Logged)
        -> (receipts: [StoreReceipt], logged: Logged) {
        let time = now()
        var created: [Message] = []
        let receipts = batch.map { outgoing in
            if let key = outgoing.idempotencyKey, let first = keys[key] {
                return StoreReceipt(id: first, created: false)
            }
            if let given = outgoing.id, messages[given] != nil {
                return StoreReceipt(id: given, created: false)
            }
            let id = outgoing.id ?? UUID.timeOrdered()
            let message = Message(
                id: id, store: name, payload: outgoing.payload, headers: outgoing.headers,
                contentType: outgoing.contentType, priority: outgoing.priority, createdAt: time,
                availableAt: time.addingTimeInterval(Double(max(outgoing.delay.milliseconds, 0)) / 1000),
                groupKey: outgoing.groupKey, idempotencyKey: outgoing.idempotencyKey, sequence: nextSequence)
            nextSequence += 1
            messages[id] = Entry(message: message)
            queue.append(message)
            if let key = outgoing.idempotencyKey { keys[key] = id }
            created.append(message)
            return StoreReceipt(id: id, created: true)
        }
        return (receipts, log(created))
    }

    public func claim(limit: Int, consumer: String, lease: Duration) async throws -> [Message] {
        try StoreError.checkLimit(limit)
        let time = now()
        // Only a group's oldest message may be claimed; it blocks the rest until it leaves.
        var claimable: [Message] = []
        queue.trim(lookup: sequence(of:))
        queue.walk(lookup: sequence(of:)) { id in
            let entry = messages[id]!
            if !entry.isLeased(at: time) && entry.message.availableAt <= time && queue.isFirstOfGroup(entry.message) {
                claimable.append(entry.message)
            }
            return claimable.count < limit
        }
        let until = time.addingTimeInterval(Double(lease.milliseconds) / 1000)
        return claimable.map { message in
            messages[message.id]!.lockedBy = consumer
            messages[message.id]!.lockedUntil = until
            messages[message.id]!.message.attempts += 1
            return messages[message.id]!.message
        }
    }

    public func claimHead(consumer: String, lease: Duration) async throws -> Message? {
        let time = now()
        var head: UUID?
        queue.trim(lookup: sequence(of:))
        queue.walk(lookup: sequence(of:)) { id in
            head = id
            return false
        }
        guard let id = head, let entry = messages[id], !entry.isLeased(at: time), entry.message.availableAt <= time else { return nil }
        messages[id]!.lockedBy = consumer
        messages[id]!.lockedUntil = time.addingTimeInterval(Double(lease.milliseconds) / 1000)
        messages[id]!.message.attempts += 1
        return messages[id]!.message
    }

    @discardableResult
    public func ack(_ ids: [UUID], consumer: String) async throws -> Int {
        ack(ids, consumer: consumer, logging: { _ in () }).count
    }

    /// `ack`, handing the ids it removed to `log` inside the actor.
    func ack<Logged: Sendable>(_ ids: [UUID], consumer: String, logging log: @Sendable ([UUID]) -> Logged)
        -> (count: Int, logged: Logged) {
        var removed: [UUID] = []
        for id in Set(ids) where messages[id]?.lockedBy == consumer {
            queue.remove(messages.removeValue(forKey: id)!.message)
            removed.append(id)
        }
        return (removed.count, log(removed))
    }

    @discardableResult
    public func release(_ id: UUID, consumer: String, retryAt: Date, error: String?) async throws -> Bool {
        guard messages[id]?.lockedBy == consumer else { return false }
        messages[id]!.lockedBy = nil
        messages[id]!.lockedUntil = nil
        messages[id]!.message.availableAt = retryAt
        if let error { messages[id]!.message.lastError = error }
        return true
    }

    @discardableResult
    public func giveBack(_ ids: [UUID], consumer: String) async throws -> Int {
        var returned = 0
        for id in ids where messages[id]?.lockedBy == consumer {
            messages[id]!.lockedBy = nil
            messages[id]!.lockedUntil = nil
            messages[id]!.message.attempts = max(messages[id]!.message.attempts - 1, 0)
            returned += 1
        }
        return returned
    }

    @discardableResult
    public func extendLeases(_ ids: [UUID], consumer: String, lease: Duration) async throws -> Int {
        let until = now().addingTimeInterval(Double(lease.milliseconds) / 1000)
        var extended = 0
        for id in ids where messages[id]?.lockedBy == consumer {
            messages[id]!.lockedUntil = until
            extended += 1
        }
        return extended
    }

    @discardableResult
    public func deadLetter(_ id: UUID, consumer: String, reason: DeadLetterReason) async throws -> Bool {
        deadLetter(id, consumer: consumer, reason: reason, logging: { _ in () }).moved
    }

    /// `deadLetter`, handing the id it took out of line (none or one) to `log` inside the actor.
    func deadLetter<Logged: Sendable>(_ id: UUID, consumer: String, reason: DeadLetterReason,
                                      logging log: @Sendable ([UUID]) -> Logged) -> (moved: Bool, logged: Logged) {
        guard let entry = messages[id], entry.lockedBy == consumer else { return (false, log([])) }
        messages[id] = nil
        queue.remove(entry.message)
        deadLetters[id] = (entry.message, reason)
        return (true, log([id]))
    }

    public func counts() async throws -> StoreCounts {
        let time = now()
        var counts = StoreCounts(deadLetters: deadLetters.count)
        for entry in messages.values {
            if entry.isLeased(at: time) {
                counts.inFlight += 1
            } else if entry.message.availableAt <= time {
                counts.ready += 1
            } else {
                counts.delayed += 1
            }
        }
        return counts
    }

    public func peek(limit: Int) async throws -> [Message] {
        try StoreError.checkLimit(limit)
        var found: [Message] = []
        queue.walk(lookup: sequence(of:)) { id in
            found.append(messages[id]!.message)
            return found.count < limit
        }
        return found
    }

    @discardableResult
    public func purge() async throws -> Int {
        purge(logging: { _ in () }).count
    }

    /// `purge`, handing the ids it removed to `log` inside the actor.
    func purge<Logged: Sendable>(logging log: @Sendable ([UUID]) -> Logged) -> (count: Int, logged: Logged) {
        let removed = Array(messages.keys)
        messages.removeAll()
        queue.removeAll()
        return (removed.count, log(removed))
    }

    /// Takes out messages whose arrival could not be logged, and the idempotency keys that name them.
    func forget(_ ids: [UUID]) {
        let gone = Set(ids)
        for id in gone {
            if let entry = messages.removeValue(forKey: id) { queue.remove(entry.message) }
        }
        keys = keys.filter { !gone.contains($0.value) }
    }

    /// The arrival number of the message with `id`, if it is still here.
    private func sequence(of id: UUID) -> Int? { messages[id]?.message.sequence }

    /// The dead letters with their reasons, oldest message first.
    public func deadLetterEntries() -> [(message: Message, reason: DeadLetterReason)] {
        deadLetters.values.sorted { $0.0.sequence < $1.0.sequence }.map { (message: $0.0, reason: $0.1) }
    }
}
