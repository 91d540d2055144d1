import Foundation

/// What a group store knows about a group without loading its messages (Spring's lazy-loaded
/// `MessageGroup` / `MessageGroupMetadata`): a release strategy decides from this alone.
public struct MessageGroupMetadata: Sendable, Equatable {
    /// The group's key (Spring's groupId): a correlation key, 1 to 1,000 characters.
    public var group: String
    /// How many messages the group holds.
    public var size: Int
    /// Free text a release strategy reads instead of the messages; nil until set.
    public var condition: String?
    /// True once the group was released: later messages are refused or start a new group.
    public var isComplete: Bool
    /// The last sequence number a resequencer let out; 0 until set.
    public var lastReleasedSequence: Int
    public var createdAt: Date
    /// When a message was last added or removed, or the group last changed.
    public var updatedAt: Date

    public init(group: String, size: Int, condition: String? = nil, isComplete: Bool = false,
                lastReleasedSequence: Int = 0, createdAt: Date, updatedAt: Date) {
        self.group = group
        self.size = size
        self.condition = condition
        self.isComplete = isComplete
        self.lastReleasedSequence = lastReleasedSequence
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// A message held in a group.
public struct GroupMessage: Sendable, Equatable, Identifiable {
    public var id: UUID
    public var group: String
    public var payload: Data
    public var headers: [String: String]
    public var contentType: String?
    public var createdAt: Date
    /// Order within the group: later messages have higher numbers (gaps are allowed).
    public var sequence: Int

    public init(id: UUID, group: String, payload: Data, headers: [String: String] = [:], contentType: String? = nil,
                createdAt: Date, sequence: Int) {
        self.id = id
        self.group = group
        self.payload = payload
        self.headers = headers
        self.contentType = contentType
        self.createdAt = createdAt
        self.sequence = sequence
    }
}

/// What adding to a completed group does.
public enum CompletedGroupRule: String, Sendable, Equatable {
    /// Nothing is added and the result says refused (Spring's late messages to the discard channel).
    case refuse
    /// The completed group goes, with anything it still holds, and a new group of the same key
    /// starts with these messages (Spring's expireGroupsUponCompletion).
    case startNewGroup = "new_group"
}

/// What an add did.
public struct GroupAddResult: Sendable, Equatable {
    /// The group after the add (before it, when refused).
    public var metadata: MessageGroupMetadata
    /// How many messages went in; messages whose id the store's groups already held are skipped.
    public var added: Int
    /// True when the group was complete and the rule was `.refuse`.
    public var refused: Bool

    public init(metadata: MessageGroupMetadata, added: Int, refused: Bool) {
        self.metadata = metadata
        self.added = added
        self.refused = refused
    }
}

/// Which clock a group's age runs on when groups expire.
public enum GroupAge: Sendable, Equatable {
    /// Since the group was created (Spring's default reaper).
    case sinceCreated
    /// Since its last change (Spring's timeoutOnIdle).
    case sinceUpdated
}

/// How many groups a store holds and how many messages are in them.
public struct GroupCounts: Sendable, Equatable {
    public var groups: Int
    public var messages: Int

    public init(groups: Int, messages: Int) {
        self.groups = groups
        self.messages = messages
    }
}

/// Argument checks shared by every group store, so each refuses bad input with the same words.
enum GroupArgument {
    static func checkGroup(_ group: String) throws {
        guard (1...1000).contains(group.count) else {
            throw StoreError(.invalidArgument, "group must be 1 to 1000 characters, got \(group.count) characters",
                             hint: "give every group a non-empty key, e.g. an order number")
        }
    }

    static func checkPageSize(_ limit: Int) throws {
        guard limit >= 1 else {
            throw StoreError(.invalidArgument, "pageSize must be at least 1, got \(limit)", hint: "500 is a good page")
        }
    }

    static func checkLastReleased(_ sequence: Int) throws {
        guard sequence >= 0 else {
            throw StoreError(.invalidArgument, "lastReleasedSequence must be 0 or more, got \(sequence)",
                             hint: "pass the sequence number of the last message let out")
        }
    }

    static func checkTimeout(_ timeout: Duration) throws {
        guard timeout >= .zero else {
            throw StoreError(.invalidArgument, "timeout must be 0 or more, got \(timeout)", hint: "e.g. .seconds(300)")
        }
    }
}
