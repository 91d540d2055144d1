import Depot
import Foundation

/// The behaviour every `MessageStore` must show, as checks any test framework can run.
///
///     let suite = MessageStoreConformance { MyStore(name: "conformance-\(UUID())") }
///     try await suite.runAll()
///
/// Each check gets a fresh, empty store from `makeStore`. A failed check throws
/// `ConformanceFailure` naming the check and what differed.
public struct MessageStoreConformance: Sendable {
    public typealias MakeStore = @Sendable () async throws -> any MessageStore
    let makeStore: MakeStore

    public init(makeStore: @escaping MakeStore) {
        self.makeStore = makeStore
    }

    /// Runs one check on a fresh store.
    public func run(_ check: ConformanceCheck) async throws {
        let store = try await makeStore()
        do {
            try await check.body(store)
        } catch let failure as ConformanceFailure {
            throw ConformanceFailure(check: check.name, message: failure.message)
        }
    }

    /// Runs every check; throws at the first failure.
    public func runAll() async throws {
        for check in ConformanceCheck.all { try await run(check) }
    }
}

/// One named behaviour of a message store.
public struct ConformanceCheck: Sendable, CustomStringConvertible {
    public let name: String
    let body: @Sendable (any MessageStore) async throws -> Void
    public var description: String { name }
}

/// A store did not behave as a `MessageStore` must.
public struct ConformanceFailure: Error, CustomStringConvertible {
    public let check: String
    public let message: String
    public var description: String { "\(check): \(message)" }
}

func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw ConformanceFailure(check: "", message: message()) }
}

func text(_ value: String) -> OutgoingMessage { OutgoingMessage(text: value) }

/// Claims until `condition` holds on the result or `timeout` passes; returns the last claim.
func claimEventually(_ store: any MessageStore, consumer: String, lease: Duration = .seconds(30), timeout: Duration = .seconds(10),
                     until condition: ([Message]) -> Bool) async throws -> [Message] {
    let deadline = ContinuousClock.now + timeout
    while true {
        let claimed = try await store.claim(limit: 10, consumer: consumer, lease: lease)
        if condition(claimed) || ContinuousClock.now >= deadline { return claimed }
        if !claimed.isEmpty {
            for message in claimed { try await store.release(message.id, consumer: consumer, retryAt: Date(), error: nil) }
        }
        try await Task.sleep(for: .milliseconds(25))
    }
}
