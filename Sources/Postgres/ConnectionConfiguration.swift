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

    /// Values that must never appear in a message: the password, however it was given.
    var secrets: [String] {
        var found: [String] = []
        var errorMessage: UnsafeMutablePointer<CChar>?
        if !connectionString.isEmpty, let options = PQconninfoParse(connectionString, &errorMessage) {
            var option = options
            while let keyword = option.pointee.keyword {
                if String(cString: keyword) == "password", let value = option.pointee.val {
                    found.append(String(cString: value))
                }
                option += 1
            }
            PQconninfoFree(options)
        }
        if let errorMessage { PQfreemem(errorMessage) }
        // A URL that libpq could not parse may still carry user:password@.
        if let url = URLComponents(string: connectionString), let password = url.password, !password.isEmpty {
            found.append(password)
            if let decoded = password.removingPercentEncoding { found.append(decoded) }
        }
        if let password = ProcessInfo.processInfo.environment["PGPASSWORD"], !password.isEmpty { found.append(password) }
        return found.filter { !$0.isEmpty }
    }

    /// Removes every secret from a message meant for people.
    func redact(_ message: String) -> String {
        secrets.reduce(message) { $0.replacingOccurrences(of: $1, with: "***") }
    }
}
