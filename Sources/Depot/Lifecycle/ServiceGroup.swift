import Foundation

/// Runs services together and stops them in reverse order, the shape of swift-service-lifecycle's
/// `ServiceGroup`. On `shutDown()` (a node's SIGTERM or SIGINT), or when one service fails, the
/// last service is told to stop and awaited, then the one before it, and so on: the HTTP
/// ingress answers what it read before the processors stop, and the processors deliver or
/// release what they hold before the node deregisters. Past `gracefulTimeout` the services left
/// are cancelled, and after a short grace the group returns without them, so that a delivery
/// stuck in a back end cannot hold a stopping node for ever (its lease hands the message on).
public final class ServiceGroup: Sendable {
    let services: [any Service]
    let gracefulTimeout: Duration
    /// How long cancelled services get before the group gives up on them.
    let cancellationGrace: Duration
    let node: String
    private let request: ShutdownSignal

    /// - Parameters:
    ///   - services: in start order; they stop in the reverse.
    ///   - node: names the node in the log.
    ///   - shutdownRequest: triggering it is `shutDown()`; one triggered before `run()` runs nothing.
    public init(_ services: [any Service], node: String, gracefulTimeout: Duration = .seconds(60),
                cancellationGrace: Duration = .seconds(2), shutdownRequest: ShutdownSignal = ShutdownSignal()) {
        self.services = services
        self.node = node
        self.gracefulTimeout = gracefulTimeout
        self.cancellationGrace = cancellationGrace
        request = shutdownRequest
    }

    /// Stops the group gracefully; `run()` returns once its services have stopped.
    public func shutDown() { request.trigger() }

    private enum Event: Sendable {
        case ended(Int, (any Error)?)
        case requested
        case deadline
    }

    /// Runs every service until a shutdown or a failure, then stops them in reverse order.
    /// Rethrows the first service's error; cancelling the calling task asks for a shutdown.
    public func run() async throws {
        guard !request.isTriggered else { return }
        let (events, sink) = AsyncStream.makeStream(of: Event.self)
        let signals = services.map { _ in ShutdownSignal() }
        let tasks = services.enumerated().map { index, service in
            Task {
                do {
                    try await service.run(signals[index])
                    sink.yield(.ended(index, nil))
                } catch {
                    sink.yield(.ended(index, error))
                }
            }
        }
        let request = self.request
        Task {
            await request.wait()
            sink.yield(.requested)
        }
        defer {
            // Ends the watcher when every service ended by itself: the group is done either way.
            request.trigger()
            sink.finish()
        }
        var running = Set(services.indices)
        var failure: (any Error)?
        var iterator = events.makeAsyncIterator()

        // Until a shutdown is asked for, or a service fails (one that simply ends is done).
        await withTaskCancellationHandler {
            while !running.isEmpty, let event = await iterator.next() {
                if case .requested = event { return }
                guard case let .ended(index, error) = event else { continue }
                running.remove(index)
                if let error {
                    // Not logged here: run() rethrows it, and its caller says it once.
                    failure = error
                    return
                }
            }
        } onCancel: {
            request.trigger()
        }

        // In reverse order, each told and awaited, all within the deadline.
        let timeout = gracefulTimeout
        let deadline = Timeout.after(timeout) { sink.yield(.deadline) }
        defer { deadline.cancel() }
        var cancelled = false
        for index in services.indices.reversed() where running.contains(index) {
            signals[index].trigger()
            while running.contains(index), !cancelled, let event = await iterator.next() {
                switch event {
                case let .ended(ended, error):
                    running.remove(ended)
                    if let error, failure == nil { failure = error }
                case .deadline:
                    cancelled = true
                case .requested:
                    continue
                }
            }
            if cancelled { break }
        }
        guard cancelled else {
            if let failure { throw failure }
            return
        }

        let late = running.sorted().map { services[$0].name }
        NodeLog.warning(node: node, "still stopping after \(timeout): \(late.joined(separator: ", ")); cancelling them")
        for index in running {
            signals[index].trigger()
            tasks[index].cancel()
        }
        let grace = Timeout.after(cancellationGrace) { sink.yield(.deadline) }
        defer { grace.cancel() }
        while !running.isEmpty, let event = await iterator.next() {
            if case .deadline = event { break }
            if case let .ended(index, _) = event { running.remove(index) }
        }
        if !running.isEmpty {
            throw ServiceGroupError(stuck: running.sorted().map { services[$0].name }, timeout: timeout)
        }
        if let failure { throw failure }
    }
}

/// Services that did not stop within the group's graceful timeout, nor when cancelled after it.
public struct ServiceGroupError: Error, CustomStringConvertible {
    public let stuck: [String]
    public let timeout: Duration
    public var description: String {
        "\(stuck.joined(separator: ", ")) did not stop within \(timeout) nor when cancelled; leases hand what they held to other nodes"
    }
}
