import Depot
import Foundation

/// The behaviour every `MessageGroupStore` must show, as checks any test framework can run.
///
///     let suite = MessageGroupStoreConformance { MyStore(name: "groups-\(UUID())") }
///     try await suite.runAll()
///
/// Each check gets a fresh store with no groups from `makeStore`. A failed check throws
/// `ConformanceFailure` naming the check and what differed.
public struct MessageGroupStoreConformance: Sendable {
    public typealias MakeStore = @Sendable () async throws -> any MessageGroupStore
    let makeStore: MakeStore

    public init(makeStore: @escaping MakeStore) {
        self.makeStore = makeStore
    }

    /// Runs one check on a fresh store.
    public func run(_ check: GroupConformanceCheck) async throws {
        let store = try await makeStore()
        do {
            try await check.body(store)
        } catch let failure as ConformanceFailure {
            throw ConformanceFailure(check: check.name, message: failure.message)
        }
    }

    /// Runs every check; throws at the first failure.
    public func runAll() async throws {
        for check in GroupConformanceCheck.all { try await run(check) }
    }
}

/// One named behaviour of a message group store.
public struct GroupConformanceCheck: Sendable, CustomStringConvertible {
    public let name: String
    let body: @Sendable (any MessageGroupStore) async throws -> Void
    public var description: String { name }
}

/// Every message of the group, read through the stream.
func streamed(_ store: any MessageGroupStore, _ group: String, pageSize: Int = 500) async throws -> [GroupMessage] {
    var messages: [GroupMessage] = []
    for try await message in store.messages(inGroup: group, pageSize: pageSize) { messages.append(message) }
    return messages
}

func bodies(_ messages: [GroupMessage]) -> [String] { messages.map { String(decoding: $0.payload, as: UTF8.self) } }

/// Runs `body` and expects it to throw a `StoreError` whose text names `field`.
func expectRefusal(naming field: String, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as StoreError {
        try expect(error.code == .invalidArgument && error.description.contains(field),
                   "refusal \"\(error)\" does not name \(field)")
        return
    }
    throw ConformanceFailure(check: "", message: "bad \(field) was accepted")
}
