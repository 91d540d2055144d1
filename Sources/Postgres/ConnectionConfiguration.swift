import CLibPQ
import Foundation

/// Where and how to connect: a `postgres://` URL or a libpq conninfo string.
///
/// An empty string means libpq's own defaults and `PG*` environment variables apply.
public struct ConnectionConfiguration: Sendable {
    /// The connection string as given. Never printed: it may hold a password.
    public let connectionString: String
    /// Seconds to wait for a connection before giving up, unless the string sets `connect_timeout`. Default 10.
    public var connectTimeoutSeconds: Int = 10
    /// Shown in `pg_stat_activity`, unless the string sets `application_name`. Default "depot".
    public var applicationName: String = "depot"
    /// How the server at the string hands out sessions: `.transaction` behind PgBouncer's
    /// transaction pooling, where nothing may outlive a transaction. Default `.session`.
    public var poolMode: PoolMode = .session
    /// A connection string for LISTEN, which needs a session of its own (a direct connection to
    /// PostgreSQL or a session pool); nil means `connectionString` when that keeps sessions. Default nil.
    public var listenConnectionString: String?
    /// The setting the string came from, named in errors about it. Default "DEPOT_DATABASE_URL".
    public var source: String = "DEPOT_DATABASE_URL"
    /// A setting in the environment that could not be used; `validate()` throws it.
    var environmentProblem: PostgresError?

    /// Whether connections keep their session between transactions.
    public enum PoolMode: String, Sendable, CaseIterable {
        /// A direct connection to PostgreSQL, or a pooler in session mode: statements are prepared
        /// once per connection, and LISTEN may share the string.
        case session
        /// A pooler in transaction mode (PgBouncer's `pool_mode = transaction`): every statement is
        /// sent unprepared, nothing session-scoped is set, and LISTEN needs `listenConnectionString`.
        case transaction
    }

    public init(_ connectionString: String = "", poolMode: PoolMode = .session, listenConnectionString: String? = nil) {
        self.connectionString = connectionString
        self.poolMode = poolMode
        self.listenConnectionString = listenConnectionString
    }

    /// Reads `DEPOT_DATABASE_URL` (without it, libpq's `PG*` variables and defaults apply),
    /// `DEPOT_DATABASE_POOL_MODE` (`session` or `transaction`) and `DEPOT_LISTEN_DATABASE_URL`.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> ConnectionConfiguration {
        var configuration = ConnectionConfiguration(environment["DEPOT_DATABASE_URL"] ?? "",
                                                    listenConnectionString: environment["DEPOT_LISTEN_DATABASE_URL"])
        if let text = environment["DEPOT_DATABASE_POOL_MODE"], !text.isEmpty {
            if let mode = PoolMode(rawValue: text.lowercased()) {
                configuration.poolMode = mode
            } else {
                configuration.environmentProblem = PostgresError(
                    kind: .usage, message: "DEPOT_DATABASE_POOL_MODE is \"\(text.prefix(40))\", which is not a pool mode",
                    hint: "set it to session (a direct connection, or PgBouncer in session mode; the default) or transaction (PgBouncer in transaction mode)")
            }
        }
        if configuration.listenConnectionString?.isEmpty == true {
            configuration.environmentProblem = configuration.environmentProblem ?? PostgresError(
                kind: .usage, message: "DEPOT_LISTEN_DATABASE_URL is set but empty",
                hint: "set it to a direct connection to PostgreSQL (not through a transaction pool), or unset it")
        }
        return configuration
    }

    /// The configuration of a connection that keeps its session, for LISTEN: `listenConnectionString`,
    /// else this one unless it is a transaction pool. Throws a `.usage` error naming the setting
    /// when there is none (LISTEN through a transaction pool would hear nothing, silently) or
    /// when it is malformed.
    public func sessionConfiguration() throws -> ConnectionConfiguration {
        if let environmentProblem { throw environmentProblem }
        guard let listenConnectionString else {
            guard poolMode == .session else {
                throw PostgresError(
                    kind: .usage,
                    message: "DEPOT_DATABASE_POOL_MODE is transaction, and a node LISTENs for new messages and row changes on a connection that must keep its session, which a transaction pool does not",
                    hint: "set DEPOT_LISTEN_DATABASE_URL to a direct connection to PostgreSQL (or to a PgBouncer database in session mode)")
            }
            return self
        }
        var direct = ConnectionConfiguration(listenConnectionString)
        direct.connectTimeoutSeconds = connectTimeoutSeconds
        direct.applicationName = applicationName
        direct.source = "DEPOT_LISTEN_DATABASE_URL"
        // Malformed, it would fail only in the node's listener, which retries quietly: say so now.
        try direct.validate()
        return direct
    }

    /// The string as libpq reads it: its keyword → value pairs, or why it cannot be read.
    /// An empty string parses to no options.
    private func parsed() -> Result<[String: String], ParseFailure> {
        guard !connectionString.isEmpty else { return .success([:]) }
        var errorMessage: UnsafeMutablePointer<CChar>?
        let options = PQconninfoParse(connectionString, &errorMessage)
        defer {
            if let options { PQconninfoFree(options) }
            if let errorMessage { PQfreemem(errorMessage) }
        }
        guard var option = options else {
            return .failure(ParseFailure(reason: errorMessage.map { String(cString: $0) } ?? "it cannot be parsed"))
        }
        var values: [String: String] = [:]
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val { values[String(cString: keyword)] = String(cString: value) }
            option += 1
        }
        return .success(values)
    }

    private struct ParseFailure: Error { let reason: String }

    /// Values that must never appear in a message: the password, however it was given.
    var secrets: [String] {
        var found: [String] = []
        if case .success(let options) = parsed(), let password = options["password"] { found.append(password) }
        // A URL that libpq could not parse may still carry user:password@.
        if let url = URLComponents(string: connectionString), let password = url.password, !password.isEmpty {
            found.append(password)
            if let decoded = password.removingPercentEncoding { found.append(decoded) }
        }
        if let password = ProcessInfo.processInfo.environment["PGPASSWORD"], !password.isEmpty { found.append(password) }
        return found.filter { !$0.isEmpty }
    }

    /// Throws a `.usage` error, without repeating the string, when libpq cannot parse it.
    func validate() throws {
        if let environmentProblem { throw environmentProblem }
        guard case .failure(let failure) = parsed() else { return }
        throw PostgresError(
            kind: .usage, message: "\(source) is malformed: \(Self.firstClause(Self.scrub(failure.reason)))",
            hint: "use a postgres://user:password@host:port/database URL or a conninfo string such as 'host=localhost dbname=depot'")
    }

    /// Removes every secret from a message meant for people.
    func redact(_ message: String) -> String {
        Self.scrub(secrets.reduce(message) { $0.replacingOccurrences(of: $1, with: "***") })
    }

    /// Masks anything shaped like a password: `scheme://user:secret@` and `password=secret`.
    static func scrub(_ message: String) -> String {
        message
            .replacingOccurrences(of: #"://([^:/@\s"]*):[^@\s"]*@"#, with: "://$1:***@", options: .regularExpression)
            .replacingOccurrences(of: #"password\s*=\s*('[^']*'|\S+)"#, with: "password=***", options: [.regularExpression, .caseInsensitive])
    }

    /// The message up to where libpq starts quoting the input back.
    static func firstClause(_ message: String) -> String {
        let line = message.split(whereSeparator: \.isNewline).first.map(String.init) ?? message
        if let quote = line.range(of: " in URI: ") ?? line.range(of: " in connection info string") {
            return String(line[..<quote.lowerBound])
        }
        return line
    }
}
