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

    public init(_ connectionString: String = "") {
        self.connectionString = connectionString
    }

    /// Reads `DEPOT_DATABASE_URL`; without it, libpq's `PG*` variables and defaults apply.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> ConnectionConfiguration {
        ConnectionConfiguration(environment["DEPOT_DATABASE_URL"] ?? "")
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
        guard case .failure(let failure) = parsed() else { return }
        throw PostgresError(
            kind: .usage, message: "DEPOT_DATABASE_URL is malformed: \(Self.firstClause(Self.scrub(failure.reason)))",
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
