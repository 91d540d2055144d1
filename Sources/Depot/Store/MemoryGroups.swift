import Foundation

/// The groups of one `MemoryStore`, as a value: every change is a plain mutating call, so the
/// actor around it makes each one atomic. Same rules as the PostgreSQL group functions.
struct MemoryGroups: Sendable {
    private struct Group: Sendable {
        var metadata: MessageGroupMetadata
        /// In sequence order.
        var messages: [GroupMessage] = []
    }

    private var groups: [String: Group] = [:]
    /// Which group holds each id: an id is held once per store, as in `depot.group_messages`.
    private var owners: [UUID: String] = [:]
    private var nextSequence = 1

    mutating func add(_ group: String, _ batch: [OutgoingMessage], whenComplete: CompletedGroupRule, at time: Date) -> GroupAddResult {
        if let existing = groups[group], existing.metadata.isComplete {
            if whenComplete == .refuse { return GroupAddResult(metadata: existing.metadata, added: 0, refused: true) }
            remove(group)
        }
        var entry = groups[group] ?? Group(metadata: MessageGroupMetadata(group: group, size: 0, createdAt: time, updatedAt: time))
        var added = 0
        for (outgoing, id) in zip(batch, UUID.filling(batch.map(\.id))) where owners[id] == nil {
            owners[id] = group
            entry.messages.append(GroupMessage(id: id, group: group, payload: outgoing.payload, headers: outgoing.headers,
                                               contentType: outgoing.contentType, createdAt: time, sequence: nextSequence))
            nextSequence += 1
            added += 1
        }
        entry.metadata.size = entry.messages.count
        entry.metadata.updatedAt = time
        groups[group] = entry
        return GroupAddResult(metadata: entry.metadata, added: added, refused: false)
    }

    func metadata(_ group: String) -> MessageGroupMetadata? { groups[group]?.metadata }

    func page(_ group: String, after sequence: Int, limit: Int) -> [GroupMessage] {
        guard let messages = groups[group]?.messages else { return [] }
        // Binary search for the first message after `sequence`: messages are in sequence order.
        var low = 0, high = messages.count
        while low < high {
            let middle = (low + high) / 2
            if messages[middle].sequence <= sequence { low = middle + 1 } else { high = middle }
        }
        return Array(messages[low..<min(low + limit, messages.count)])
    }

    mutating func remove(_ group: String, ids: [UUID], at time: Date) -> Int {
        guard var entry = groups[group] else { return 0 }
        let gone = Set(ids.filter { owners[$0] == group })
        guard !gone.isEmpty else { return 0 }
        entry.messages.removeAll { gone.contains($0.id) }
        gone.forEach { owners[$0] = nil }
        entry.metadata.size = entry.messages.count
        entry.metadata.updatedAt = time
        groups[group] = entry
        return gone.count
    }

    @discardableResult
    mutating func remove(_ group: String) -> Bool {
        guard let entry = groups.removeValue(forKey: group) else { return false }
        entry.messages.forEach { owners[$0.id] = nil }
        return true
    }

    /// Applies `change` to the group's metadata and stamps it; false when there is no such group.
    mutating func update(_ group: String, at time: Date, _ change: (inout MessageGroupMetadata) -> Void) -> Bool {
        guard groups[group] != nil else { return false }
        change(&groups[group]!.metadata)
        groups[group]!.metadata.updatedAt = time
        return true
    }

    var counts: GroupCounts {
        GroupCounts(groups: groups.count, messages: groups.values.reduce(0) { $0 + $1.messages.count })
    }

    /// Groups older than `timeout` at `time`, oldest first.
    func expired(olderThan timeout: Duration, age: GroupAge, at time: Date) -> [MessageGroupMetadata] {
        groups.values.map(\.metadata).filter { Self.isExpired($0, olderThan: timeout, age: age, at: time) }
            .sorted { Self.clock($0, age) < Self.clock($1, age) }
    }

    static func isExpired(_ group: MessageGroupMetadata, olderThan timeout: Duration, age: GroupAge, at time: Date) -> Bool {
        clock(group, age) < time.addingTimeInterval(-Double(timeout.milliseconds) / 1000)
    }

    private static func clock(_ group: MessageGroupMetadata, _ age: GroupAge) -> Date {
        age == .sinceCreated ? group.createdAt : group.updatedAt
    }

    mutating func poll(_ group: String, at time: Date) -> GroupMessage? {
        guard var entry = groups[group], !entry.messages.isEmpty else { return nil }
        let first = entry.messages.removeFirst()
        owners[first.id] = nil
        entry.metadata.size = entry.messages.count
        entry.metadata.updatedAt = time
        groups[group] = entry
        return first
    }
}

extension MemoryStore: MessageGroupStore {
    public func addToGroup(_ group: String, _ messages: [OutgoingMessage], whenComplete: CompletedGroupRule) async throws -> GroupAddResult {
        try GroupArgument.checkGroup(group)
        return groups.add(group, messages, whenComplete: whenComplete, at: now())
    }

    public func groupMetadata(_ group: String) async throws -> MessageGroupMetadata? {
        try GroupArgument.checkGroup(group)
        return groups.metadata(group)
    }

    public func groupPage(_ group: String, after sequence: Int, limit: Int) async throws -> [GroupMessage] {
        try GroupArgument.checkGroup(group)
        try GroupArgument.checkPageSize(limit)
        return groups.page(group, after: sequence, limit: limit)
    }

    @discardableResult
    public func removeFromGroup(_ group: String, ids: [UUID]) async throws -> Int {
        try GroupArgument.checkGroup(group)
        return groups.remove(group, ids: ids, at: now())
    }

    @discardableResult
    public func removeGroup(_ group: String) async throws -> Bool {
        try GroupArgument.checkGroup(group)
        return groups.remove(group)
    }

    @discardableResult
    public func setGroupCondition(_ group: String, to condition: String?) async throws -> Bool {
        try GroupArgument.checkGroup(group)
        return groups.update(group, at: now()) { $0.condition = condition }
    }

    @discardableResult
    public func completeGroup(_ group: String) async throws -> Bool {
        try GroupArgument.checkGroup(group)
        return groups.update(group, at: now()) { $0.isComplete = true }
    }

    @discardableResult
    public func setLastReleasedSequence(_ group: String, to sequence: Int) async throws -> Bool {
        try GroupArgument.checkGroup(group)
        try GroupArgument.checkLastReleased(sequence)
        return groups.update(group, at: now()) { $0.lastReleasedSequence = sequence }
    }

    public func groupCounts() async throws -> GroupCounts { groups.counts }

    /// A group being expired is marked while its callback runs (the actor is free meanwhile),
    /// so a second pass at the same time passes it by, as SKIP LOCKED does in PostgreSQL.
    @discardableResult
    public func expireGroups(olderThan timeout: Duration, age: GroupAge,
                             onExpired: @Sendable (MessageGroupMetadata) async throws -> Void) async throws -> Int {
        try GroupArgument.checkTimeout(timeout)
        var expired = 0
        for candidate in groups.expired(olderThan: timeout, age: age, at: now()) where !expiringGroups.contains(candidate.group) {
            // Read again: an earlier callback's await let other calls change it.
            guard let current = groups.metadata(candidate.group),
                  MemoryGroups.isExpired(current, olderThan: timeout, age: age, at: now()) else { continue }
            expiringGroups.insert(current.group)
            defer { expiringGroups.remove(current.group) }
            try await onExpired(current)
            groups.remove(current.group)
            expired += 1
        }
        return expired
    }

    public func pollFromGroup(_ group: String) async throws -> GroupMessage? {
        try GroupArgument.checkGroup(group)
        return groups.poll(group, at: now())
    }
}
