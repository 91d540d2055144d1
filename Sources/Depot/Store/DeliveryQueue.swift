import Foundation

/// The order a `MemoryStore` hands messages out in (priority first, then arrival), kept as it
/// changes, so that a claim walks from the head instead of sorting every message it holds: a
/// journal of 100,000 messages is drained a batch at a time without a sort of 100,000 per batch.
///
/// Arrival numbers only grow, so each priority's line is appended to in order. Removal is lazy:
/// a line keeps the ids of messages that left until a walk steps over them at its head, or
/// until they outnumber the live ones and the line is rebuilt.
struct DeliveryQueue {
    private struct Line {
        var entries: [(sequence: Int, id: UUID)] = []
        var head = 0
    }

    /// Lines by priority, and the priorities from highest to lowest.
    private var lines: [Int: Line] = [:]
    private var priorities: [Int] = []
    /// Each group's live messages' arrival numbers, oldest first: only the first is claimable.
    private var groups: [String: [Int]] = [:]
    private var live = 0
    private var stale = 0

    /// Adds a message that arrived after every message already here.
    mutating func append(_ message: Message) {
        if lines[message.priority] == nil {
            lines[message.priority] = Line()
            priorities.append(message.priority)
            priorities.sort(by: >)
        }
        lines[message.priority]!.entries.append((message.sequence, message.id))
        if let group = message.groupKey { groups[group, default: []].append(message.sequence) }
        live += 1
    }

    /// Notes that `message` left the store.
    mutating func remove(_ message: Message) {
        if let group = message.groupKey, var sequences = groups[group] {
            if let index = sequences.firstIndex(of: message.sequence) { sequences.remove(at: index) }
            groups[group] = sequences.isEmpty ? nil : sequences
        }
        live -= 1
        stale += 1
    }

    /// Notes that every message left.
    mutating func removeAll() {
        self = DeliveryQueue()
    }

    /// True when `message` is the oldest of its group still here (or has no group).
    func isFirstOfGroup(_ message: Message) -> Bool {
        guard let group = message.groupKey else { return true }
        return groups[group]?.first == message.sequence
    }

    /// Steps each line's head past the messages that left, and rebuilds the lines once those
    /// outnumber the live ones. `lookup` says whether an id is still here (and as which arrival).
    mutating func trim(lookup: (UUID) -> Int?) {
        compactIfWorthIt(lookup: lookup)
        for priority in priorities {
            var line = lines[priority]!
            while line.head < line.entries.count, lookup(line.entries[line.head].id) != line.entries[line.head].sequence {
                line.head += 1
                stale -= 1
            }
            lines[priority] = line
        }
    }

    /// Gives the live messages to `visit` in delivery order until it returns false.
    func walk(lookup: (UUID) -> Int?, _ visit: (UUID) -> Bool) {
        for priority in priorities {
            let line = lines[priority]!
            for entry in line.entries[line.head...] where lookup(entry.id) == entry.sequence {
                if !visit(entry.id) { return }
            }
        }
    }

    /// Rebuilds the lines without the ids that left once those outnumber the live ones.
    private mutating func compactIfWorthIt(lookup: (UUID) -> Int?) {
        guard stale > max(1024, live) else { return }
        for priority in priorities {
            let line = lines[priority]!
            lines[priority] = Line(entries: line.entries[line.head...].filter { lookup($0.id) == $0.sequence }, head: 0)
        }
        priorities.removeAll { lines[$0]!.entries.isEmpty }
        lines = lines.filter { !$0.value.entries.isEmpty }
        stale = 0
    }
}
