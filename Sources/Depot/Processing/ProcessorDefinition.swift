import Foundation

/// What a processor does with the messages it takes.
public enum ProcessorKind: String, Sendable, Codable, CaseIterable {
    /// Sends each message to `targetEndpoint` over HTTP.
    case forwarding
    /// Runs the named `handler` on each message.
    case sampling
    /// Moves each message into `targetStore`.
    case failoverForwarding = "failover-forwarding"
    /// Gathers messages into correlation groups and sends each full group as one message to
    /// `targetStore`, or to `targetEndpoint` through its hand-off store (Spring's aggregator).
    case aggregating
    /// Lets each correlation group's messages into `targetStore` (or to `targetEndpoint` through
    /// its hand-off store) in the order of their `sequenceHeader` numbers, holding early ones
    /// until the gap fills or `gapTimeoutMilliseconds` passes (Spring's resequencer).
    case resequencing
}

/// What an aggregating processor does with a group that timed out.
public enum GroupTimeoutAction: String, Sendable, Codable {
    /// Release what the group holds, as a full group would be.
    case send
    /// Move its members to the dead letters (reason "group expired").
    case deadLetter = "dead_letter"
}

/// The form of the one message an aggregating processor sends for a group.
public enum AggregateFormat: String, Sendable, Codable {
    /// The members' payloads as one JSON array (JSON members as JSON, others as strings).
    case jsonArray = "json_array"
    /// Each member as one line of JSON, as it would be an element of the array.
    case ndjson
    /// The members' payload bytes one after another.
    case concatenated
}

/// One row of `depot.processors`: what to consume, where to deliver, how to pace and how to fail.
public struct ProcessorDefinition: Sendable, Equatable, Codable {
    public var name: String
    public var kind: ProcessorKind
    public var store: String
    public var targetEndpoint: String?
    public var targetStore: String?
    public var handler: String?
    /// Each member takes at most `batchSize` messages per interval; 0 = as fast as the target takes them. Default 1000.
    public var intervalMilliseconds: Int = 1000
    /// When set, replaces the interval: each fire drains the store.
    public var cron: String?
    /// Messages a forwarding or failover-forwarding member takes per interval. Default 1.
    public var batchSize: Int = 1
    /// Messages a sampling member takes per interval, handled at once. Default 1.
    public var concurrency: Int = 1
    /// Wait before a failed message is tried again. Default 1000.
    public var retryIntervalMilliseconds: Int = 1000
    /// Attempts before the drop policy applies; 0 or less retries forever. Default 4.
    public var maxDeliveryAttempts: Int = 4
    /// After the last attempt: true moves the message out (fail store or dead letters), false deactivates the processor. Default false.
    public var maxDeliveryDrop: Bool = false
    /// Where dropped messages go instead of the dead letters.
    public var failStore: String?
    /// HTTP statuses that are not retried: the message is dead-lettered at once.
    public var nonRetryStatusCodes: [Int] = []
    public var replyHandler: String?
    public var faultHandler: String?
    public var deactivateHandler: String?
    public var isActive: Bool = true
    /// Child workers per node. Default 1.
    public var memberCount: Int = 1
    /// Node names allowed to run it; empty = every node.
    public var pinnedServers: [String] = []
    /// Messages per second for every node and member together (`ClusterPace`); nil = no limit.
    public var rateLimit: Double?
    /// Deliver only the store's head message, one at a time across the cluster, retrying it
    /// until it is done (MI's forwarding order). Default false: later messages may overtake one
    /// that waits for its retry.
    public var inOrder: Bool = false
    /// Failed attempts in a row to reach the database before the processor stops and is
    /// deactivated (MI's max.store.connection.attempts); -1 keeps trying. Default -1.
    public var maxStoreConnectionAttempts: Int = -1
    /// The wait between those attempts (MI's store.connection.retry.interval). Default 1000.
    public var storeConnectionRetryIntervalMilliseconds: Int = 1000
    /// Aggregating: a group is released when it holds this many messages.
    public var releaseSize: Int?
    /// Aggregating and resequencing: the header whose value correlates messages; nil = the message's group key.
    public var correlationHeader: String?
    /// Resequencing: one fixed correlation key for every message, in place of
    /// `correlationHeader`: the whole store is one sequence (Synapse's resequence store). Default nil.
    public var correlationKey: String?
    /// Aggregating: the header whose value, on any member, is the group's full size (an end
    /// marker); it wins over `releaseSize` for that group. Default nil.
    public var releaseCountHeader: String?
    /// Aggregating: a group that waited this long is released whatever its size; nil = never.
    public var groupTimeoutMilliseconds: Int?
    /// Aggregating: the group timeout counts from the group's last change instead of its first
    /// message. Default false.
    public var groupTimeoutFromLast: Bool = false
    /// Aggregating: what a timed-out group does. Default `.send`.
    public var groupTimeoutAction: GroupTimeoutAction = .send
    /// Aggregating: the form of a released group's message. Default `.jsonArray`.
    public var outputFormat: AggregateFormat = .jsonArray
    /// Resequencing: the header holding each message's sequence number (1, 2, 3…). Default
    /// `Depot-Sequence-Number`.
    public var sequenceHeader: String? = "Depot-Sequence-Number"
    /// Resequencing: a message held this long behind a missing number goes out, the missing
    /// numbers skipped and recorded as a gap; nil = wait until the gap fills. Default nil.
    public var gapTimeoutMilliseconds: Int?

    public init(name: String, kind: ProcessorKind, store: String) {
        self.name = name
        self.kind = kind
        self.store = store
    }

    /// As the table's columns are named (`interval_ms`, … once snake-cased), so that JSON of a
    /// row reads like the row.
    enum CodingKeys: String, CodingKey {
        case name, kind, store, targetEndpoint, targetStore, handler, cron, batchSize, concurrency
        case maxDeliveryAttempts, maxDeliveryDrop, failStore, nonRetryStatusCodes, replyHandler, faultHandler
        case deactivateHandler, isActive, memberCount, pinnedServers, rateLimit, inOrder, maxStoreConnectionAttempts
        case releaseSize, correlationHeader, releaseCountHeader, groupTimeoutFromLast, groupTimeoutAction, outputFormat
        case sequenceHeader, correlationKey
        case intervalMilliseconds = "intervalMs", retryIntervalMilliseconds = "retryIntervalMs"
        case storeConnectionRetryIntervalMilliseconds = "storeConnectionRetryIntervalMs"
        case groupTimeoutMilliseconds = "groupTimeoutMs", gapTimeoutMilliseconds = "gapTimeoutMs"
    }

    /// An aggregating or resequencing processor with a `targetEndpoint` releases into this store
    /// (the release commits with the removal of its members, exactly once) and then delivers from
    /// it to the endpoint under the forwarding rules (at least once). The database declares it
    /// when the row is written (migration 0022). Nil for every other row.
    public var handoffStore: String? {
        guard kind == .aggregating || kind == .resequencing, targetEndpoint != nil else { return nil }
        return Self.handoffStore(of: name)
    }

    /// The hand-off store of processor `name`: the name and "/handoff" (processor names hold no
    /// "/", so no other processor's store is named so); `depot.processor_handoff_store` in SQL.
    public static func handoffStore(of name: String) -> String { name + "/handoff" }

    /// Whether node `node` should run this processor.
    public func runs(on node: String) -> Bool {
        isActive && (pinnedServers.isEmpty || pinnedServers.contains(node))
    }

    /// Every handler name the row refers to, with the column that names it.
    var handlerReferences: [(column: String, name: String)] {
        [("handler", handler), ("reply_handler", replyHandler), ("fault_handler", faultHandler),
         ("deactivate_handler", deactivateHandler)].compactMap { column, name in name.map { (column, $0) } }
    }
}

/// One row of `depot.endpoints`: an HTTP back end.
public struct EndpointDefinition: Sendable, Equatable, Codable {
    public var name: String
    public var url: URL
    /// Default POST.
    public var method: String = "POST"
    /// Give up on a request after this long. Default 30000.
    public var timeoutMilliseconds: Int = 30000
    /// Sent with every request; a message header of the same name is left out (the row wins).
    public var headers: [String: String] = [:]

    /// The message headers that may go to the endpoint (names compared without case); nil lets
    /// every one pass but those `headers` sets and the connection's own. Default nil.
    public var messageHeaders: [String]?

    public init(name: String, url: URL, method: String = "POST", timeoutMilliseconds: Int = 30000, headers: [String: String] = [:],
                messageHeaders: [String]? = nil) {
        self.name = name
        self.url = url
        self.method = method
        self.timeoutMilliseconds = timeoutMilliseconds
        self.headers = headers
        self.messageHeaders = messageHeaders
    }

    public var timeout: Duration { .milliseconds(timeoutMilliseconds) }
}
