/// An error from PostgreSQL or from libpq.
///
/// `description` is safe to show a user: it never contains a password or a parameter value.
/// The server's detail and hint are kept apart so a caller can show them or not.
public struct PostgresError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What went wrong, broadly; callers branch on this and on `sqlState`.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        let raw: String
        /// The server could not be reached, refused us, or the connection broke.
        public static let connection = Kind(raw: "connection")
        /// The server answered a statement with an error (see `sqlState`).
        public static let server = Kind(raw: "server")
        /// A row value could not be decoded into the requested Swift type.
        public static let decoding = Kind(raw: "decoding")
        /// The caller used the API wrongly (for example a bad connection string).
        public static let usage = Kind(raw: "usage")
        public var description: String { raw }
    }

    public var kind: Kind
    /// Five-character SQLSTATE for server errors, `nil` otherwise.
    public var sqlState: SQLState?
    /// The primary, human-readable message.
    public var message: String
    public var detail: String?
    public var hint: String?
    /// The SQL text of the failed statement (never its parameters), for debugging only.
    public var query: String?

    public init(kind: Kind, sqlState: SQLState? = nil, message: String, detail: String? = nil, hint: String? = nil, query: String? = nil) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
        self.query = query
    }

    /// True when the connection is unusable and a new one is needed (server restart, network loss).
    public var isConnectionLoss: Bool {
        if kind == .connection { return true }
        guard let state = sqlState else { return false }
        return state.errorClass == SQLState.connectionExceptionClass
            || state == .adminShutdown || state == .crashShutdown || state == .cannotConnectNow
    }

    public var description: String {
        var text = message
        if let sqlState { text += " (SQLSTATE \(sqlState.code))" }
        return text
    }

    public var debugDescription: String {
        var parts = ["PostgresError(kind: \(kind), message: \(message)"]
        if let sqlState { parts.append("sqlState: \(sqlState.code)") }
        if let detail { parts.append("detail: \(detail)") }
        if let hint { parts.append("hint: \(hint)") }
        if let query { parts.append("query: \(query)") }
        return parts.joined(separator: ", ") + ")"
    }
}
