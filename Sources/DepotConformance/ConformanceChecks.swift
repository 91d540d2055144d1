import Depot
import Foundation

extension ConformanceCheck {
    /// Every check, in a sensible reading order.
    public static let all: [ConformanceCheck] = [
        roundTripsPayloadsAndHeaders, receiptsFollowInputOrder, claimsByPriorityThenArrival,
        leasesAreExclusive, ackRemovesOnlyTheHoldersMessages, ackAndClaimTakesTheNextBatch, releaseReturnsAtRetryTime,
        expiredLeaseIsClaimableAgainWithAttemptsCounted, extendedLeaseStaysWithItsHolder, givenBackMessageKeepsItsAttempts, delayedMessagesWait, groupsGoOneAtATimeInOrder,
        idempotencyKeyStoresOnce, givenIDIsKeptAndStoredOnce, deadLetterTakesTheMessageOut, countsAndPeekShowWhatWaits, purgeEmptiesTheStore,
    ]

    public static let roundTripsPayloadsAndHeaders = ConformanceCheck(name: "round-trips payloads and headers") { store in
        var binary = Data([0, 1, 2, 0, 255, 0])
        binary.append(Data(repeating: 0, count: 100))
        let large = Data((0..<(10 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let headers = ["quote": "it's \"quoted\" \\ back", "unicode": "żółw 🐢 日本", "empty": ""]
        let sent = [
            OutgoingMessage(payload: Data()),
            OutgoingMessage(payload: binary, headers: headers, contentType: "application/octet-stream"),
            OutgoingMessage(payload: large, contentType: "application/x-large"),
        ]
        let receipts = try await store.store(sent)
        let claimed = try await store.claim(limit: 10, consumer: "c1", lease: .seconds(60))
        try expect(claimed.count == 3, "claimed \(claimed.count) messages, expected 3")
        for (receipt, original) in zip(receipts, sent) {
            guard let got = claimed.first(where: { $0.id == receipt.id }) else { throw ConformanceFailure(check: "", message: "message \(receipt.id) was not claimed") }
            try expect(got.payload == original.payload, "payload of \(original.payload.count) bytes came back as \(got.payload.count) bytes or changed")
            try expect(got.headers == original.headers, "headers \(original.headers) came back as \(got.headers)")
            try expect(got.contentType == original.contentType, "content type \(String(describing: original.contentType)) came back as \(String(describing: got.contentType))")
            try expect(got.store == store.name, "message store is \(got.store), expected \(store.name)")
        }
    }

    public static let ackAndClaimTakesTheNextBatch = ConformanceCheck(name: "ack-and-claim acks the holder's messages and leases the next") { store in
        let receipts = try await store.store((0..<5).map { text("m\($0)") })
        let first = try await store.claim(limit: 2, consumer: "c1", lease: .seconds(60))
        let other = try await store.claim(limit: 1, consumer: "c2", lease: .seconds(60))
        // c1 acks its two and, by mistake, c2's one: only its own go.
        let next = try await store.ackAndClaim(first.map(\.id) + other.map(\.id), limit: 10, consumer: "c1", lease: .seconds(60))
        try expect(next.map(\.id) == Array(receipts.map(\.id)[3...]), "ack-and-claim leased \(next.count) messages, expected the last 2 in order")
        let left = try await store.counts().total
        try expect(left == 3, "expected 3 messages left (c2's and the 2 leased), found \(left)")
        try expect(try await store.ack(other.map(\.id), consumer: "c2") == 1, "c2's message must survive c1's ack")
        let last = try await store.ackAndClaim(next.map(\.id), limit: 10, consumer: "c1", lease: .seconds(60))
        try expect(last.isEmpty, "nothing is left to claim, got \(last.count)")
        try expect(try await store.counts().total == 0, "the store must be empty after the last ack")
    }

    public static let receiptsFollowInputOrder = ConformanceCheck(name: "receipts follow input order") { store in
        let receipts = try await store.store((0..<50).map { text("m\($0)") })
        try expect(receipts.count == 50 && Set(receipts.map(\.id)).count == 50, "expected 50 distinct receipts, got \(receipts.count)")
        try expect(receipts.allSatisfy(\.created), "every new message must report created")
        let claimed = try await store.claim(limit: 50, consumer: "c1", lease: .seconds(60))
        try expect(claimed.map(\.id) == receipts.map(\.id), "claim order differs from store order")
        let bodies = claimed.map { String(decoding: $0.payload, as: UTF8.self) }
        try expect(bodies == (0..<50).map { "m\($0)" }, "payloads out of order: \(bodies.prefix(5))…")
    }

    public static let claimsByPriorityThenArrival = ConformanceCheck(name: "claims by priority, then arrival") { store in
        var low = text("low-1"); low.priority = 0
        var high = text("high-1"); high.priority = 5
        var low2 = text("low-2"); low2.priority = 0
        var high2 = text("high-2"); high2.priority = 5
        var urgent = text("urgent"); urgent.priority = 9
        _ = try await store.store([low, high, low2, high2, urgent])
        var order: [String] = []
        while true {
            let claimed = try await store.claim(limit: 1, consumer: "c1", lease: .seconds(60))
            guard let message = claimed.first else { break }
            order.append(String(decoding: message.payload, as: UTF8.self))
        }
        try expect(order == ["urgent", "high-1", "high-2", "low-1", "low-2"], "claim order was \(order)")
    }

    public static let leasesAreExclusive = ConformanceCheck(name: "a leased message goes to one consumer") { store in
        _ = try await store.store((0..<10).map { text("m\($0)") })
        let first = try await store.claim(limit: 6, consumer: "a", lease: .seconds(60))
        let second = try await store.claim(limit: 10, consumer: "b", lease: .seconds(60))
        let third = try await store.claim(limit: 10, consumer: "c", lease: .seconds(60))
        try expect(first.count == 6 && second.count == 4 && third.isEmpty, "claims were \(first.count), \(second.count), \(third.count); expected 6, 4, 0")
        try expect(Set(first.map(\.id)).isDisjoint(with: second.map(\.id)), "two consumers got the same message")
        try expect((first + second).allSatisfy { $0.attempts == 1 }, "a first claim must count attempt 1")
    }

    public static let ackRemovesOnlyTheHoldersMessages = ConformanceCheck(name: "ack removes only the lease holder's messages") { store in
        _ = try await store.store([text("a"), text("b")])
        let claimed = try await store.claim(limit: 2, consumer: "holder", lease: .seconds(60))
        let stranger = try await store.ack(claimed.map(\.id), consumer: "stranger")
        try expect(stranger == 0, "a consumer without the lease removed \(stranger) messages")
        let removed = try await store.ack(claimed.map(\.id), consumer: "holder")
        try expect(removed == 2, "the holder's ack removed \(removed), expected 2")
        let again = try await store.ack(claimed.map(\.id), consumer: "holder")
        try expect(again == 0, "a second ack removed \(again)")
        let counts = try await store.counts()
        try expect(counts.total == 0, "store still holds \(counts)")
    }

    public static let releaseReturnsAtRetryTime = ConformanceCheck(name: "release makes a message claimable at its retry time") { store in
        _ = try await store.store(text("retry me"))
        let first = try await store.claim(limit: 1, consumer: "c1", lease: .seconds(60))
        try expect(first.count == 1, "nothing to claim")
        let later = Date().addingTimeInterval(3600)
        let released = try await store.release(first[0].id, consumer: "c1", retryAt: later, error: "HTTP 503")
        try expect(released, "release by the holder failed")
        let early = try await store.claim(limit: 1, consumer: "c2", lease: .seconds(60))
        try expect(early.isEmpty, "a message released for later was claimable at once")
        let counts = try await store.counts()
        try expect(counts.delayed == 1 && counts.inFlight == 0, "after release counts are \(counts); expected 1 delayed")
        _ = try await store.store(text("filler"))  // the store must keep working around the delayed message
        let filler = try await store.claim(limit: 5, consumer: "c2", lease: .seconds(60))
        try expect(filler.count == 1, "claimed \(filler.count), expected only the new message")
        let stale = try await store.release(first[0].id, consumer: "c1", retryAt: Date(), error: nil)
        try expect(!stale, "release by a consumer that no longer holds the lease succeeded")
    }

    public static let expiredLeaseIsClaimableAgainWithAttemptsCounted = ConformanceCheck(name: "an expired lease makes the message claimable again, attempts counted") { store in
        let receipt = try await store.store(text("forgotten"))
        let first = try await store.claim(limit: 1, consumer: "crashed", lease: .milliseconds(300))
        try expect(first.first?.attempts == 1, "first claim attempts \(String(describing: first.first?.attempts)), expected 1")
        let rescued = try await claimEventually(store, consumer: "rescuer") { !$0.isEmpty }
        try expect(rescued.first?.id == receipt.id, "the expired message never came back")
        try expect(rescued.first?.attempts == 2, "attempts after the second claim are \(String(describing: rescued.first?.attempts)), expected 2")
        let lateAck = try await store.ack([receipt.id], consumer: "crashed")
        try expect(lateAck == 0, "the consumer whose lease expired could still ack")
    }

    public static let extendedLeaseStaysWithItsHolder = ConformanceCheck(name: "an extended lease keeps the message with its holder") { store in
        let receipt = try await store.store(text("slow delivery"))
        _ = try await store.claim(limit: 1, consumer: "slow", lease: .milliseconds(400))
        let strangers = try await store.extendLeases([receipt.id], consumer: "stranger", lease: .seconds(60))
        try expect(strangers == 0, "a consumer without the lease extended it")
        let extended = try await store.extendLeases([receipt.id], consumer: "slow", lease: .seconds(60))
        try expect(extended == 1, "extendLeases returned \(extended), expected 1")
        try await Task.sleep(for: .milliseconds(700))
        let stolen = try await store.claim(limit: 1, consumer: "other", lease: .seconds(60))
        try expect(stolen.isEmpty, "the message went to another consumer although its lease was extended")
        try expect(try await store.ack([receipt.id], consumer: "slow") == 1, "the holder could not ack after extending")
    }

    public static let givenBackMessageKeepsItsAttempts = ConformanceCheck(name: "a message given back untried is claimable at once, its attempt not counted") { store in
        let receipt = try await store.store(text("untried"))
        _ = try await store.claim(limit: 1, consumer: "stopping", lease: .seconds(60))
        try expect(try await store.giveBack([receipt.id], consumer: "stranger") == 0, "a consumer without the lease gave it back")
        try expect(try await store.giveBack([receipt.id], consumer: "stopping") == 1, "the holder could not give it back")
        let again = try await store.claim(limit: 1, consumer: "next", lease: .seconds(60))
        try expect(again.first?.id == receipt.id, "the given-back message was not claimable at once")
        try expect(again.first?.attempts == 1, "attempts after give-back and a new claim are \(String(describing: again.first?.attempts)), expected 1")
    }

    public static let delayedMessagesWait = ConformanceCheck(name: "delayed messages wait until they are due") { store in
        var distant = text("in an hour"); distant.delay = .seconds(3600)
        _ = try await store.store(distant)
        let early = try await store.claim(limit: 1, consumer: "c1", lease: .seconds(60))
        try expect(early.isEmpty, "a message delayed by an hour was claimable at once")
        let waiting = try await store.peek(limit: 1)
        let delay = (waiting.first?.availableAt.timeIntervalSince(waiting.first?.createdAt ?? Date())) ?? 0
        try expect(abs(delay - 3600) < 1, "available_at is \(delay)s after created_at, expected 3600s")
        var soon = text("soon"); soon.delay = .milliseconds(300)
        let receipt = try await store.store(soon)
        let due = try await claimEventually(store, consumer: "c1") { !$0.isEmpty }
        try expect(due.map(\.id) == [receipt.id], "the message delayed by 300ms never became claimable alone")
    }

    public static let groupsGoOneAtATimeInOrder = ConformanceCheck(name: "a group goes one message at a time, in order") { store in
        var batch: [OutgoingMessage] = []
        for index in 0..<3 {
            for group in ["g1", "g2"] {
                var message = text("\(group)-\(index)"); message.groupKey = group
                batch.append(message)
            }
        }
        batch.append(text("loose"))
        _ = try await store.store(batch)
        let first = try await store.claim(limit: 10, consumer: "c1", lease: .seconds(60))
        let firstBodies = Set(first.map { String(decoding: $0.payload, as: UTF8.self) })
        try expect(firstBodies == ["g1-0", "g2-0", "loose"], "first claim took \(firstBodies); expected each group's head and the loose one")
        let blocked = try await store.claim(limit: 10, consumer: "c2", lease: .seconds(60))
        try expect(blocked.isEmpty, "took \(blocked.count) messages of groups whose heads are in flight")
        // A head released for a later retry still blocks its group: order is kept.
        let g1Head = first.first { $0.groupKey == "g1" }!
        try await store.release(g1Head.id, consumer: "c1", retryAt: Date().addingTimeInterval(3600), error: nil)
        try await store.ack(first.filter { $0.groupKey != "g1" }.map(\.id), consumer: "c1")
        let next = try await store.claim(limit: 10, consumer: "c2", lease: .seconds(60))
        let nextBodies = next.map { String(decoding: $0.payload, as: UTF8.self) }
        try expect(nextBodies == ["g2-1"], "after acking g2-0 with g1-0 waiting to retry, claimed \(nextBodies); expected [g2-1]")
    }

    public static let idempotencyKeyStoresOnce = ConformanceCheck(name: "an idempotency key stores once") { store in
        var keyed = text("first"); keyed.idempotencyKey = "order-7"
        let first = try await store.store(keyed)
        keyed.payload = Data("second".utf8)
        let retry = try await store.store(keyed)
        try expect(first.created && !retry.created, "created flags were \(first.created), \(retry.created); expected true, false")
        try expect(first.id == retry.id, "a retry with the same key got a new id")
        var other = text("twin"); other.idempotencyKey = "order-8"
        let batch = try await store.store([other, other, text("plain")])
        try expect(batch[0].id == batch[1].id && batch[0].created && !batch[1].created, "a key repeated inside one batch stored twice")
        var counts = try await store.counts()
        try expect(counts.total == 3, "store holds \(counts.total) messages, expected 3")
        let claimed = try await store.claim(limit: 10, consumer: "c", lease: .seconds(60))
        try await store.ack(claimed.map(\.id), consumer: "c")
        let afterDelivery = try await store.store(keyed)
        try expect(afterDelivery.id == first.id && !afterDelivery.created, "a producer retry after delivery stored the message again")
        counts = try await store.counts()
        try expect(counts.total == 0, "store holds \(counts.total) messages after the retry, expected 0")
    }

    public static let givenIDIsKeptAndStoredOnce = ConformanceCheck(name: "a message moved in with its id keeps it, and moving it twice stores it once") { store in
        let id = UUID()
        var moved = text("moved")
        moved.id = id
        let first = try await store.store(moved)
        try expect(first == StoreReceipt(id: id, created: true), "first store of a given id returned \(first)")
        let second = try await store.store(moved)
        try expect(second == StoreReceipt(id: id, created: false), "second store of the same id returned \(second)")
        let claimed = try await store.claim(limit: 10, consumer: "c1", lease: .seconds(60))
        try expect(claimed.map(\.id) == [id], "expected exactly the moved message, claimed \(claimed.map(\.id))")
    }

    public static let deadLetterTakesTheMessageOut = ConformanceCheck(name: "dead-lettering takes the message out of line") { store in
        _ = try await store.store([text("poison"), text("next")])
        let claimed = try await store.claim(limit: 1, consumer: "c1", lease: .seconds(60))
        let stranger = try await store.deadLetter(claimed[0].id, consumer: "c2", reason: DeadLetterReason("nope"))
        try expect(!stranger, "a consumer without the lease dead-lettered the message")
        let moved = try await store.deadLetter(claimed[0].id, consumer: "c1",
                                               reason: DeadLetterReason("max attempts", lastError: "HTTP 500", statusCode: 500, processor: "p", node: "n"))
        try expect(moved, "the holder could not dead-letter its message")
        let counts = try await store.counts()
        try expect(counts.deadLetters == 1 && counts.ready == 1, "counts after dead-lettering are \(counts)")
        let rest = try await store.claim(limit: 5, consumer: "c1", lease: .seconds(60))
        try expect(rest.map { String(decoding: $0.payload, as: UTF8.self) } == ["next"], "the dead letter was claimable again")
    }

    public static let countsAndPeekShowWhatWaits = ConformanceCheck(name: "counts and peek show what waits") { store in
        var delayed = text("delayed"); delayed.delay = .seconds(3600)
        _ = try await store.store([text("a"), text("b"), text("c"), delayed])
        _ = try await store.claim(limit: 1, consumer: "c1", lease: .seconds(60))
        let counts = try await store.counts()
        try expect(counts == StoreCounts(ready: 2, delayed: 1, inFlight: 1, deadLetters: 0), "counts are \(counts)")
        let peeked = try await store.peek(limit: 2)
        try expect(peeked.map { String(decoding: $0.payload, as: UTF8.self) } == ["a", "b"], "peek showed \(peeked.map(\.payload))")
        let after = try await store.counts()
        try expect(after == counts, "peek changed the counts")
    }

    public static let purgeEmptiesTheStore = ConformanceCheck(name: "purge empties the store") { store in
        _ = try await store.store((0..<5).map { text("m\($0)") })
        _ = try await store.claim(limit: 2, consumer: "c1", lease: .seconds(60))
        let purged = try await store.purge()
        try expect(purged == 5, "purge removed \(purged), expected 5")
        let counts = try await store.counts()
        try expect(counts.total == 0, "after purge counts are \(counts)")
    }
}
