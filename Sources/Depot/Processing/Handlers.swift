import DepotHTTP
import Foundation

/// What a handler is given: the message, and for reply and fault handlers, what happened.
public struct HandlerContext: Sendable {
    /// Which column of the processor row named the handler (the raw value is the column).
    public enum Role: String, Sendable {
        /// A sampling processor's `handler`: the message to process.
        case handler = "handler"
        /// `reply_handler`: the message was delivered; `response` is the endpoint's answer.
        case reply = "reply_handler"
        /// `fault_handler`: an attempt failed; `failure` says why, `response` is the answer if there was one.
        case fault = "fault_handler"
        /// `deactivate_handler`: the processor deactivated over this message; `failure` says why.
        case deactivation = "deactivate_handler"
    }

    public var message: Message
    public var processor: String
    public var node: String
    /// The endpoint's response, for reply handlers (and fault handlers when there was one).
    public var response: HTTPResponse?
    /// Why the attempt failed, for fault and deactivate handlers.
    public var failure: String?
    /// Sends a message to a named endpoint (what `call:ENDPOINT` uses).
    public var call: @Sendable (_ endpoint: String, _ message: Message) async throws -> HTTPResponse
    /// Why the handler runs. Default `.handler`.
    public var role: Role = .handler

    /// What `call:ENDPOINT` sends: the endpoint's reply (its body and content type, the message's
    /// id and headers) for a reply handler, as a reply sequence would; the message otherwise.
    public var messageToSend: Message {
        guard role == .reply, let response else { return message }
        var reply = message
        reply.payload = response.body
        reply.contentType = response.headers["Content-Type"]
        return reply
    }
}

/// A named piece of Swift that processors run: a sampling processor's `handler`, or a
/// `reply_handler`, `fault_handler` or `deactivate_handler`. A thrown error is a failed attempt.
public typealias MessageHandler = @Sendable (HandlerContext) async throws -> Void

/// Handlers by name. Embed Depot as a library and register your own; the stock binary has
/// `log`, `drop` and `call:ENDPOINT`.
public struct HandlerRegistry: Sendable {
    private var handlers: [String: MessageHandler] = [:]
    /// Handlers whose name has a prefix and an argument, like `call:ENDPOINT`.
    private var families: [String: @Sendable (String) -> MessageHandler] = [:]

    public init() {}

    /// Registers (or replaces) the handler called `name`.
    public mutating func register(_ name: String, _ handler: @escaping MessageHandler) {
        handlers[name] = handler
    }

    /// Registers handlers named `prefix:ARGUMENT`; `make` builds one for each argument.
    public mutating func registerFamily(_ prefix: String, _ make: @escaping @Sendable (String) -> MessageHandler) {
        families[prefix] = make
    }

    /// The handler called `name`, if registered.
    public func handler(named name: String) -> MessageHandler? {
        if let handler = handlers[name] { return handler }
        if let colon = name.firstIndex(of: ":"), let make = families[String(name[..<colon])] {
            return make(String(name[name.index(after: colon)...]))
        }
        return nil
    }

    /// Names as an operator would write them, for error messages.
    public var names: [String] {
        (handlers.keys.sorted() + families.keys.sorted().map { "\($0):…" })
    }

    /// `log` prints one line per message; `drop` does nothing (the message is acked);
    /// `call:ENDPOINT` sends the message (as a reply handler: the endpoint's reply) to that
    /// endpoint, logs the answer, and fails on a non-2xx.
    public static var stock: HandlerRegistry {
        var registry = HandlerRegistry()
        registry.register("log") { context in
            NodeLog.info(node: context.node, describe(context))
        }
        registry.register("drop") { _ in }
        registry.registerFamily("call") { endpoint in
            { context in
                let response = try await context.call(endpoint, context.messageToSend)
                NodeLog.info(node: context.node, "processor \(context.processor) message \(context.message.id) → \(endpoint): \(response.status) \(preview(response.body))")
                guard response.isSuccess else {
                    throw HandlerFailure("endpoint \(endpoint) answered \(response.status)")
                }
            }
        }
        return registry
    }

    static func describe(_ context: HandlerContext) -> String {
        var line = "processor \(context.processor) message \(context.message.id) attempt \(context.message.attempts)"
        if let response = context.response { line += " status \(response.status) reply \(preview(response.body))" }
        if let failure = context.failure { line += " failure: \(failure)" }
        if context.response == nil { line += " payload \(preview(context.message.payload))" }
        return line
    }

    /// Up to 200 bytes as text, for logs.
    static func preview(_ data: Data) -> String {
        let text = String(decoding: data.prefix(200), as: UTF8.self).replacingOccurrences(of: "\n", with: "\\n")
        return data.count > 200 ? "\"\(text)…\" (\(data.count) bytes)" : "\"\(text)\""
    }
}

/// A handler's own failure with a message for the logs and `last_error`.
public struct HandlerFailure: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
