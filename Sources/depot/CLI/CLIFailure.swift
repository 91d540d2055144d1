import Depot
import Foundation
import Postgres

/// Why `depot` stopped, and the exit status that says so (the BSD sysexits codes).
enum CLIFailure: Error {
    /// Wrong arguments: exit 64 (EX_USAGE).
    case usage(String)
    /// `--help` was asked for: print it, exit 0.
    case helpRequested(String)
    /// A file to read is missing or unreadable: exit 66 (EX_NOINPUT).
    case noInput(String)
    /// The input names something that is not there, or breaks a rule: exit 65 (EX_DATAERR).
    case data(String)
    /// A service this verb needs cannot be had (a port is taken): exit 69 (EX_UNAVAILABLE).
    case unavailable(String)
    /// The environment configures Depot wrongly (an empty DEPOT_HTTP_TOKEN): exit 78 (EX_CONFIG).
    case configuration(String)
}

/// Exit statuses, documented in `depot --help` and the README.
enum ExitStatus {
    static let success: Int32 = 0
    /// The database refused or failed a statement.
    static let failure: Int32 = 1
    static let usage: Int32 = 64
    static let dataError: Int32 = 65
    static let noInput: Int32 = 66
    /// PostgreSQL could not be reached.
    static let unavailable: Int32 = 69
    /// A bug in depot.
    static let software: Int32 = 70
    /// DEPOT_DATABASE_URL cannot be parsed, a node has no session to LISTEN on, DEPOT_HTTP_TOKEN is empty or padded, the schema is behind.
    static let configuration: Int32 = 78
}

/// Turns any error into one line on standard error and an exit status. No stack traces.
func report(_ error: Error) -> Int32 {
    func say(_ line: String) { FileHandle.standardError.write(Data("depot: \(line)\n".utf8)) }
    switch error {
    case CLIFailure.helpRequested(let help):
        print(help)
        return ExitStatus.success
    case CLIFailure.usage(let message):
        say(message)
        return ExitStatus.usage
    case CLIFailure.noInput(let message):
        say(message)
        return ExitStatus.noInput
    case CLIFailure.data(let message):
        say(message)
        return ExitStatus.dataError
    case CLIFailure.unavailable(let message):
        say(message)
        return ExitStatus.unavailable
    case CLIFailure.configuration(let message):
        say(message)
        return ExitStatus.configuration
    case let error as StoreError:
        say(error.description)
        return ExitStatus.dataError
    case let error as AdminError:
        say(error.description)
        return ExitStatus.dataError
    case let error as PostgresError where error.kind == .usage:
        say(error.hint.map { "\(error.message); \($0)" } ?? error.message)
        return ExitStatus.configuration
    case let error as PostgresError where error.isConnectionLoss:
        say("\(error.message); \(error.hint ?? Connection.connectionHint(for: error.message))")
        return ExitStatus.unavailable
    case let error as PostgresError:
        say(error.hint.map { "\(error.description); \($0)" } ?? error.description)
        return ExitStatus.failure
    case let error as SchemaBehind:
        say(error.description)
        return ExitStatus.configuration
    case let error as MigrationError:
        say(error.description)
        return ExitStatus.failure
    case let error as ChaosLoss:
        say(error.description)
        return ExitStatus.failure
    default:
        say("unexpected error: \(error)")
        return ExitStatus.software
    }
}
