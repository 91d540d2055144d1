import Foundation

/// A message waiting in a store, as a consumer sees it.
public struct Message: Sendable, Equatable, Identifiable {
    public var id: UUID
    /// The store it waits in.
    public var store: String
    /// Any bytes, up to 64 MiB and beyond (PostgreSQL's limit is 1 GiB).
    public var payload: Data
    public var headers: [String: String]
    public var contentType: String?
    /// Higher is delivered first.
    public var priority: Int
    public var createdAt: Date
    /// Not claimable before this (delays and retry back-off).
    public var availableAt: Date
    /// Claims so far, this one included.
    public var attempts: Int
    /// Messages sharing a group key are delivered one at a time, in arrival order.
    public var groupKey: String?
    public var idempotencyKey: String?
    /// The last failure recorded by `release`, if any.
    public var lastError: String?
    /// Arrival order within the store's backend; "oldest first" means lowest sequence first.
    public var sequence: Int

    public init(
        id: UUID, store: String, payload: Data, headers: [String: String] = [:], contentType: String? = nil,
        priority: Int = 0, createdAt: Date, availableAt: Date, attempts: Int = 0,
        groupKey: String? = nil, idempotencyKey: String? = nil, lastError: String? = nil, sequence: Int = 0
    ) {
        self.id = id
        self.store = store
        self.payload = payload
        self.headers = headers
        self.contentType = contentType
        self.priority = priority
        self.createdAt = createdAt
        self.availableAt = availableAt
        self.attempts = attempts
        self.groupKey = groupKey
        self.idempotencyKey = idempotencyKey
        self.lastError = lastError
        self.sequence = sequence
    }
}

/// A message a producer hands to a store.
public struct OutgoingMessage: Sendable, Equatable {
    public var payload: Data
    public var headers: [String: String]
    /// The payload's media type. Default `nil` (shown as application/octet-stream).
    public var contentType: String?
    /// Higher is delivered first. Default 0.
    public var priority: Int
    /// How long before it may be claimed. Default zero.
    public var delay: Duration
    /// Deliver one at a time, in order, with others of the same key. Default none.
    public var groupKey: String?
    /// Storing the same key in the same store again stores nothing and returns the first id.
    public var idempotencyKey: String?
    /// Keeps a message's id when it moves between stores; storing an id that is already there
    /// stores nothing. Default nil: a new id.
    public var id: UUID?

    public init(
        payload: Data, headers: [String: String] = [:], contentType: String? = nil, priority: Int = 0,
        delay: Duration = .zero, groupKey: String? = nil, idempotencyKey: String? = nil, id: UUID? = nil
    ) {
        self.id = id
        self.payload = payload
        self.headers = headers
        self.contentType = contentType
        self.priority = priority
        self.delay = delay
        self.groupKey = groupKey
        self.idempotencyKey = idempotencyKey
    }

    /// The same message, to be stored elsewhere under the same id.
    public init(moving message: Message) {
        self.init(payload: message.payload, headers: message.headers, contentType: message.contentType,
                  priority: message.priority, groupKey: message.groupKey, idempotencyKey: message.idempotencyKey, id: message.id)
    }

    /// A UTF-8 text message.
    public init(text: String, headers: [String: String] = [:], contentType: String? = "text/plain; charset=utf-8") {
        self.init(payload: Data(text.utf8), headers: headers, contentType: contentType)
    }
}

/// What storing a message produced.
public struct StoreReceipt: Sendable, Equatable {
    public let id: UUID
    /// False when the idempotency key was seen before: nothing was stored and `id` is the first message's.
    public let created: Bool

    public init(id: UUID, created: Bool) {
        self.id = id
        self.created = created
    }
}

/// How many messages a store holds, by state.
public struct StoreCounts: Sendable, Equatable {
    /// Claimable now.
    public var ready: Int
    /// Waiting for their `availableAt`.
    public var delayed: Int
    /// Leased to a consumer.
    public var inFlight: Int
    public var deadLetters: Int

    public init(ready: Int = 0, delayed: Int = 0, inFlight: Int = 0, deadLetters: Int = 0) {
        self.ready = ready
        self.delayed = delayed
        self.inFlight = inFlight
        self.deadLetters = deadLetters
    }

    /// Messages still in the store (ready, delayed or in flight).
    public var total: Int { ready + delayed + inFlight }
}

extension Duration {
    /// Whole milliseconds, rounded toward zero.
    var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }

    /// Seconds with their fraction.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
