import Foundation

/// A group's messages in order, read one keyset page at a time (`MessageGroupStore.groupPage`):
/// only the current page is in memory, so a group of a million messages streams in the memory
/// of a few hundred.
public struct GroupMessageStream: AsyncSequence, Sendable {
    public typealias Element = GroupMessage
    let store: any MessageGroupStore
    let group: String
    let pageSize: Int

    public func makeAsyncIterator() -> Iterator {
        Iterator(store: store, group: group, pageSize: pageSize)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let store: any MessageGroupStore
        let group: String
        let pageSize: Int
        private var page: [GroupMessage] = []
        private var index = 0
        private var after = 0
        private var finished = false

        init(store: any MessageGroupStore, group: String, pageSize: Int) {
            self.store = store
            self.group = group
            self.pageSize = pageSize
        }

        public mutating func next() async throws -> GroupMessage? {
            if index == page.count {
                guard !finished else { return nil }
                try GroupArgument.checkPageSize(pageSize)
                page = try await store.groupPage(group, after: after, limit: pageSize)
                index = 0
                finished = page.count < pageSize
                guard let last = page.last else { return nil }
                after = last.sequence
            }
            defer { index += 1 }
            return page[index]
        }
    }
}
