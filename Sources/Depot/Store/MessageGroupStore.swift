import Foundation

/// Messages gathered in named groups within a store, held until something releases them:
/// Spring Integration's `MessageGroupStore`, for aggregators, resequencers and correlation
/// across nodes. Groups are apart from the store's queue: a grouped message is never claimed.
///
/// Every call is one step: an add is one round trip however many messages it carries, and a
/// group's metadata is read without its messages. `PostgresStore` (shared by every node, SQL
/// functions `depot.group_*` beside it) and `MemoryStore` conform; a store of your own can run
/// `MessageGroupStoreConformance`.
public protocol MessageGroupStore: Sendable {
    /// The store's name.
    var name: String { get }

    /// Adds `messages` to `group` in arrival order, creating the group; returns the group after
    /// the add. A message whose id the store's groups already hold is skipped (a redelivery
    /// adds nothing). `whenComplete` says what a completed group does with them.
    func addToGroup(_ group: String, _ messages: [OutgoingMessage], whenComplete: CompletedGroupRule) async throws -> GroupAddResult

    /// The group's metadata without its messages; nil when there is no such group.
    func groupMetadata(_ group: String) async throws -> MessageGroupMetadata?

    /// Up to `limit` of the group's messages with a sequence above `sequence`, in order: one
    /// keyset page. `messages(inGroup:)` streams a whole group with it.
    func groupPage(_ group: String, after sequence: Int, limit: Int) async throws -> [GroupMessage]

    /// Removes the messages `ids` from the group; returns how many it held.
    @discardableResult
    func removeFromGroup(_ group: String, ids: [UUID]) async throws -> Int

    /// Removes the group and its messages; false when there was none.
    @discardableResult
    func removeGroup(_ group: String) async throws -> Bool

    /// Sets the group's condition (nil clears it); false when there is no such group.
    @discardableResult
    func setGroupCondition(_ group: String, to condition: String?) async throws -> Bool

    /// Marks the group complete (released); false when there is no such group.
    @discardableResult
    func completeGroup(_ group: String) async throws -> Bool

    /// Records the last sequence number let out of the group; false when there is no such group.
    @discardableResult
    func setLastReleasedSequence(_ group: String, to sequence: Int) async throws -> Bool

    /// How many groups the store holds, and how many messages are in them.
    func groupCounts() async throws -> GroupCounts

    /// Spring's reaper: for each group older than `timeout` (by `age`), calls `onExpired` once
    /// and then removes the group; returns how many expired. A group whose callback throws stays,
    /// and the error ends the pass. Nodes expiring at once never take one group twice. The
    /// callback may read the group (`messages(inGroup:)`) but not change it.
    @discardableResult
    func expireGroups(olderThan timeout: Duration, age: GroupAge,
                      onExpired: @Sendable (MessageGroupMetadata) async throws -> Void) async throws -> Int

    /// Takes and removes the group's first message (Spring's pollMessageFromGroup); nil when
    /// the group is empty or absent.
    func pollFromGroup(_ group: String) async throws -> GroupMessage?
}

extension MessageGroupStore {
    /// Adds one message to `group`, creating the group.
    public func addToGroup(_ group: String, _ message: OutgoingMessage,
                           whenComplete: CompletedGroupRule = .refuse) async throws -> GroupAddResult {
        try await addToGroup(group, [message], whenComplete: whenComplete)
    }

    /// Adds `messages` to `group`; a completed group refuses them.
    public func addToGroup(_ group: String, _ messages: [OutgoingMessage]) async throws -> GroupAddResult {
        try await addToGroup(group, messages, whenComplete: .refuse)
    }

    /// The group's messages in order, fetched `pageSize` at a time as the caller iterates:
    /// memory stays bounded by one page whatever the group's size (Spring's streamMessagesForGroup).
    /// Messages added behind the reader's page are seen; removed ones are not.
    /// - Parameter pageSize: messages per round trip. Default 500.
    public func messages(inGroup group: String, pageSize: Int = 500) -> GroupMessageStream {
        GroupMessageStream(store: self, group: group, pageSize: pageSize)
    }
}
