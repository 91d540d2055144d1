import Postgres

/// An operator's request named something that is not there or asked for something impossible.
/// `description` says what and how to fix it; the CLI exits 65 on it.
public struct AdminError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// No processor, store or dead letter by that name or id.
        case notFound
        /// An argument was out of range or malformed.
        case invalidArgument
        /// The message is being delivered; the operation needs `force`.
        case inUse
    }
    public let code: Code
    public let message: String
    /// How to fix it.
    public let hint: String?

    public init(_ code: Code, _ message: String, hint: String? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    public var description: String { hint.map { "\(message); \($0)" } ?? message }

    /// The admin functions' own refusals (undefined_object, invalid_parameter_value, object_in_use), as `AdminError`.
    static func translating<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PostgresError where error.sqlState == .undefinedObject {
            throw AdminError(.notFound, error.message, hint: error.hint)
        } catch let error as PostgresError where error.sqlState == .invalidParameterValue {
            throw AdminError(.invalidArgument, error.message, hint: error.hint)
        } catch let error as PostgresError where error.sqlState == .objectInUse {
            throw AdminError(.inUse, error.message, hint: error.hint)
        }
    }
}
