import Depot
import Foundation
import Synchronization

extension GroupConformanceCheck {
    /// Every check, in a sensible reading order.
    public static let all: [GroupConformanceCheck] = [
        addCreatesTheGroup, sameIdIsAddedOnce, streamsInOrderAcrossPages, removesSomeMessages, removesAGroup,
        setsAndClearsTheCondition, completedGroupRefusesLaterMessages, completedGroupStartsAgainWhenAsked,
        keepsTheLastReleasedSequence, countsGroupsAndMessages, pollTakesTheFirstMessage, concurrentAddsAreAllKept,
        expiryCallsBackOncePerExpiredGroup, idleExpiryPassesByTouchedGroups, refusesBadArgumentsNamingThem,
    ]

    public static let addCreatesTheGroup = GroupConformanceCheck(name: "an add creates the group and reports it without its messages") { store in
        try expect(try await store.groupMetadata("order-1") == nil, "a group that was never added to has metadata")
        let headers = ["quote": "it's \"quoted\"", "unicode": "żółw 🐢"]
        let result = try await store.addToGroup("order-1", [
            OutgoingMessage(text: "a", headers: headers), OutgoingMessage(payload: Data([0, 255]), contentType: "application/octet-stream"),
            OutgoingMessage(text: "c"),
        ])
        try expect(result.added == 3 && !result.refused, "add reported \(result.added) added, refused \(result.refused)")
        let metadata = result.metadata
        try expect(metadata.group == "order-1" && metadata.size == 3 && metadata.condition == nil && !metadata.isComplete
                   && metadata.lastReleasedSequence == 0, "metadata after the add is \(metadata)")
        try expect(metadata.createdAt <= metadata.updatedAt, "created \(metadata.createdAt) is after updated \(metadata.updatedAt)")
        let read = try await store.groupMetadata("order-1")
        try expect(read == metadata, "groupMetadata read \(String(describing: read)), the add answered \(metadata)")
        let messages = try await streamed(store, "order-1")
        try expect(messages.count == 3 && messages[0].headers == headers && messages[1].payload == Data([0, 255])
                   && messages[1].contentType == "application/octet-stream" && messages.allSatisfy { $0.group == "order-1" },
                   "the group's messages came back as \(messages)")
        let more = try await store.addToGroup("order-1", OutgoingMessage(text: "d"))
        try expect(more.metadata.size == 4 && more.metadata.createdAt == metadata.createdAt, "a second add gave \(more.metadata)")
    }

    public static let sameIdIsAddedOnce = GroupConformanceCheck(name: "a message added again with its id is kept once") { store in
        let id = UUID()
        var message = OutgoingMessage(text: "once")
        message.id = id
        let first = try await store.addToGroup("g", [message, message])
        try expect(first.added == 1 && first.metadata.size == 1, "a batch repeating one id added \(first.added), size \(first.metadata.size)")
        let again = try await store.addToGroup("g", message)
        try expect(again.added == 0 && again.metadata.size == 1, "adding the id again added \(again.added), size \(again.metadata.size)")
        let messages = try await streamed(store, "g")
        try expect(messages.map(\.id) == [id], "the group holds \(messages.map(\.id)), expected [\(id)]")
    }

    public static let streamsInOrderAcrossPages = GroupConformanceCheck(name: "a group streams in arrival order across pages") { store in
        for start in stride(from: 0, to: 1050, by: 350) {
            _ = try await store.addToGroup("big", (start..<start + 350).map { OutgoingMessage(text: "m\($0)") })
            _ = try await store.addToGroup("other", OutgoingMessage(text: "noise \(start)"))
        }
        let messages = try await streamed(store, "big", pageSize: 100)
        try expect(bodies(messages) == (0..<1050).map { "m\($0)" }, "streamed \(messages.count) messages, first out of order near \(bodies(messages).prefix(3))")
        try expect(zip(messages, messages.dropFirst()).allSatisfy { $0.sequence < $1.sequence }, "sequences do not ascend")
        let exact = try await streamed(store, "other", pageSize: 3)
        try expect(exact.count == 3, "a group of exactly one page streamed \(exact.count)")
        let none = try await streamed(store, "absent")
        try expect(none.isEmpty, "an absent group streamed \(none.count) messages")
        let page = try await store.groupPage("big", after: messages[99].sequence, limit: 2)
        try expect(bodies(page) == ["m100", "m101"], "the page after m99 is \(bodies(page))")
    }

    public static let removesSomeMessages = GroupConformanceCheck(name: "removing some messages leaves the rest in order") { store in
        let result = try await store.addToGroup("g", (0..<5).map { OutgoingMessage(text: "m\($0)") })
        let messages = try await streamed(store, "g")
        let removed = try await store.removeFromGroup("g", ids: [messages[1].id, messages[3].id, UUID()])
        try expect(removed == 2, "removed \(removed), expected 2")
        let left = try await streamed(store, "g")
        try expect(bodies(left) == ["m0", "m2", "m4"], "left \(bodies(left))")
        let metadata = try await store.groupMetadata("g")
        try expect(metadata?.size == 3, "size after removing 2 of 5 is \(String(describing: metadata?.size))")
        try expect((metadata?.updatedAt ?? .distantPast) >= result.metadata.updatedAt, "updatedAt went back")
        let fromOther = try await store.removeFromGroup("other", ids: [messages[0].id])
        try expect(fromOther == 0, "removing a message through another group's key removed \(fromOther)")
    }

    public static let removesAGroup = GroupConformanceCheck(name: "removing a group removes its messages") { store in
        _ = try await store.addToGroup("g", (0..<3).map { OutgoingMessage(text: "m\($0)") })
        _ = try await store.addToGroup("kept", OutgoingMessage(text: "k"))
        try expect(try await store.removeGroup("g"), "removing an existing group answered false")
        try expect(try await !store.removeGroup("g"), "removing it again answered true")
        try expect(try await store.groupMetadata("g") == nil, "the removed group still has metadata")
        let counts = try await store.groupCounts()
        try expect(counts == GroupCounts(groups: 1, messages: 1), "counts after the removal are \(counts)")
        let again = try await store.addToGroup("g", OutgoingMessage(text: "new"))
        try expect(again.metadata.size == 1, "a group added to after its removal starts with \(again.metadata.size)")
    }

    public static let setsAndClearsTheCondition = GroupConformanceCheck(name: "a group's condition is set, read and cleared") { store in
        try expect(try await !store.setGroupCondition("absent", to: "x"), "setting the condition of an absent group answered true")
        _ = try await store.addToGroup("file-1", OutgoingMessage(text: "line"))
        try expect(try await store.setGroupCondition("file-1", to: "{\"lineCount\": 1000}"), "setting the condition answered false")
        try expect(try await store.groupMetadata("file-1")?.condition == "{\"lineCount\": 1000}", "the condition did not stick")
        let added = try await store.addToGroup("file-1", OutgoingMessage(text: "line 2"))
        try expect(added.metadata.condition == "{\"lineCount\": 1000}", "an add lost the condition: \(added.metadata)")
        try expect(try await store.setGroupCondition("file-1", to: nil), "clearing the condition answered false")
        try expect(try await store.groupMetadata("file-1")?.condition == nil, "the condition was not cleared")
    }

    public static let completedGroupRefusesLaterMessages = GroupConformanceCheck(name: "a completed group refuses later messages") { store in
        try expect(try await !store.completeGroup("absent"), "completing an absent group answered true")
        _ = try await store.addToGroup("g", (0..<2).map { OutgoingMessage(text: "m\($0)") })
        try expect(try await store.completeGroup("g"), "completing the group answered false")
        let late = try await store.addToGroup("g", OutgoingMessage(text: "late"), whenComplete: .refuse)
        try expect(late.refused && late.added == 0 && late.metadata.isComplete && late.metadata.size == 2,
                   "a late message to a completed group gave \(late)")
        try expect(bodies(try await streamed(store, "g")) == ["m0", "m1"], "the completed group's messages changed")
    }

    public static let completedGroupStartsAgainWhenAsked = GroupConformanceCheck(name: "a completed group starts again when the caller asks") { store in
        _ = try await store.addToGroup("g", (0..<2).map { OutgoingMessage(text: "old\($0)") })
        try await store.setGroupCondition("g", to: "old")
        try await store.setLastReleasedSequence("g", to: 2)
        try await store.completeGroup("g")
        let fresh = try await store.addToGroup("g", OutgoingMessage(text: "new"), whenComplete: .startNewGroup)
        try expect(!fresh.refused && fresh.added == 1, "adding to a completed group with startNewGroup gave \(fresh)")
        try expect(fresh.metadata.size == 1 && !fresh.metadata.isComplete && fresh.metadata.condition == nil
                   && fresh.metadata.lastReleasedSequence == 0, "the new group is \(fresh.metadata)")
        let held = bodies(try await streamed(store, "g"))
        try expect(held == ["new"], "the new group holds \(held)")
        try expect(try await store.groupCounts() == GroupCounts(groups: 1, messages: 1), "the old group's messages are still counted")
    }

    public static let keepsTheLastReleasedSequence = GroupConformanceCheck(name: "the last released sequence number is kept") { store in
        try expect(try await !store.setLastReleasedSequence("absent", to: 1), "setting it on an absent group answered true")
        _ = try await store.addToGroup("g", OutgoingMessage(text: "3"))
        try expect(try await store.setLastReleasedSequence("g", to: 2), "setting it answered false")
        try expect(try await store.groupMetadata("g")?.lastReleasedSequence == 2, "it did not stick")
    }

    public static let countsGroupsAndMessages = GroupConformanceCheck(name: "counts groups and the messages in them") { store in
        try expect(try await store.groupCounts() == GroupCounts(groups: 0, messages: 0), "a fresh store counts groups")
        _ = try await store.addToGroup("a", (0..<3).map { OutgoingMessage(text: "a\($0)") })
        _ = try await store.addToGroup("b", (0..<4).map { OutgoingMessage(text: "b\($0)") })
        _ = try await store.addToGroup("c", [])
        let counts = try await store.groupCounts()
        try expect(counts == GroupCounts(groups: 3, messages: 7), "counts are \(counts); expected 3 groups, 7 messages")
    }

    public static let pollTakesTheFirstMessage = GroupConformanceCheck(name: "poll takes and removes the group's first message") { store in
        try expect(try await store.pollFromGroup("absent") == nil, "polling an absent group gave a message")
        _ = try await store.addToGroup("q", (0..<3).map { OutgoingMessage(text: "m\($0)") })
        let first = try await store.pollFromGroup("q")
        try expect(first.map { bodies([$0]) } == ["m0"], "the first poll gave \(String(describing: first))")
        try expect(try await store.groupMetadata("q")?.size == 2, "the poll did not shrink the group")
        let rest = [try await store.pollFromGroup("q"), try await store.pollFromGroup("q"), try await store.pollFromGroup("q")]
        try expect(bodies(rest.compactMap { $0 }) == ["m1", "m2"] && rest[2] == nil, "later polls gave \(rest)")
        try expect(try await store.groupMetadata("q")?.size == 0, "a polled-out group has a size")
    }

    public static let concurrentAddsAreAllKept = GroupConformanceCheck(name: "adds from many callers at once are all kept and counted") { store in
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for producer in 0..<8 {
                tasks.addTask {
                    for batch in 0..<5 {
                        _ = try await store.addToGroup("shared", (0..<10).map { OutgoingMessage(text: "p\(producer)-b\(batch)-\($0)") })
                    }
                }
            }
            try await tasks.waitForAll()
        }
        let messages = try await streamed(store, "shared", pageSize: 64)
        try expect(messages.count == 400 && Set(messages.map(\.id)).count == 400, "the group streamed \(messages.count) messages, expected 400")
        try expect(try await store.groupMetadata("shared")?.size == 400, "the size is not 400")
        for producer in 0..<8 {
            let own = bodies(messages).filter { $0.hasPrefix("p\(producer)-") }
            let sent = (0..<5).flatMap { batch in (0..<10).map { "p\(producer)-b\(batch)-\($0)" } }
            try expect(own == sent, "producer \(producer)'s messages are out of their order")
        }
    }

    public static let expiryCallsBackOncePerExpiredGroup = GroupConformanceCheck(name: "expiry calls back once per expired group, then removes it") { store in
        _ = try await store.addToGroup("old-1", OutgoingMessage(text: "a"))
        _ = try await store.addToGroup("old-2", (0..<2).map { OutgoingMessage(text: "b\($0)") })
        try await Task.sleep(for: .milliseconds(1500))  // the groups must age; nothing else to await
        _ = try await store.addToGroup("young", OutgoingMessage(text: "c"))
        // A callback that fails leaves its group.
        let failed = try? await store.expireGroups(olderThan: .seconds(1), age: .sinceCreated) { _ in throw CancellationError() }
        let groupsAfterFailure = try await store.groupCounts().groups
        try expect(failed == nil && groupsAfterFailure == 3, "a failing callback removed a group")
        let tally = ExpiryTally()
        // Two reapers at once: each expired group is called back once in all.
        async let first = store.expireGroups(olderThan: .seconds(1), age: .sinceCreated) { tally.record($0) }
        async let second = store.expireGroups(olderThan: .seconds(1), age: .sinceCreated) { tally.record($0) }
        let expired = try await first + second
        try expect(expired == 2, "the reapers expired \(expired) groups, expected 2")
        try expect(tally.calls == ["old-1": 1, "old-2": 1], "callbacks per group were \(tally.calls)")
        try expect(tally.sizes == ["old-1": 1, "old-2": 2], "callbacks saw sizes \(tally.sizes)")
        try expect(try await store.groupCounts() == GroupCounts(groups: 1, messages: 1), "the expired groups were not removed")
        try expect(try await store.groupMetadata("young") != nil, "the young group was expired")
    }

    public static let idleExpiryPassesByTouchedGroups = GroupConformanceCheck(name: "idle expiry counts from the last change") { store in
        _ = try await store.addToGroup("idle", OutgoingMessage(text: "a"))
        _ = try await store.addToGroup("busy", OutgoingMessage(text: "b"))
        try await Task.sleep(for: .milliseconds(1500))  // the groups must age; nothing else to await
        _ = try await store.addToGroup("busy", OutgoingMessage(text: "b2"))
        let tally = ExpiryTally()
        let expired = try await store.expireGroups(olderThan: .seconds(1), age: .sinceUpdated) { tally.record($0) }
        try expect(expired == 1 && tally.calls == ["idle": 1], "idle expiry took \(tally.calls)")
        try expect(try await store.groupMetadata("busy")?.size == 2, "the busy group was touched by idle expiry")
    }

    public static let refusesBadArgumentsNamingThem = GroupConformanceCheck(name: "bad arguments are refused with the argument's name") { store in
        try await expectRefusal(naming: "group") { _ = try await store.addToGroup("", OutgoingMessage(text: "x")) }
        try await expectRefusal(naming: "group") { _ = try await store.groupMetadata(String(repeating: "k", count: 1001)) }
        try await expectRefusal(naming: "pageSize") { _ = try await store.groupPage("g", after: 0, limit: 0) }
        try await expectRefusal(naming: "lastReleasedSequence") { _ = try await store.setLastReleasedSequence("g", to: -1) }
        try await expectRefusal(naming: "timeout") { _ = try await store.expireGroups(olderThan: .seconds(-1), age: .sinceCreated) { _ in } }
        try expect(try await store.groupCounts().groups == 0, "a refused call created a group")
    }
}

/// What expiry callbacks saw: calls per group, and each group's size.
final class ExpiryTally: Sendable {
    private let state = Mutex<(calls: [String: Int], sizes: [String: Int])>(([:], [:]))

    func record(_ group: MessageGroupMetadata) {
        state.withLock {
            $0.calls[group.group, default: 0] += 1
            $0.sizes[group.group] = group.size
        }
    }

    var calls: [String: Int] { state.withLock { $0.calls } }
    var sizes: [String: Int] { state.withLock { $0.sizes } }
}
