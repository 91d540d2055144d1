import Foundation

/// What a finished child process left behind.
public struct ProcessOutput: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// The package's root folder, found from this file's path.
public let packageRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Runs a program to completion and returns its status and output.
public func runProcess(_ executable: URL, _ arguments: [String], environment: [String: String] = [:],
                       input: Data? = nil, removing removedVariables: [String] = []) async throws -> ProcessOutput {
    let child = try ChildProcess(executable.path, arguments, environment: environment, removing: removedVariables, input: input)
    defer { child.cleanUp() }
    let status = await child.wait()
    return ProcessOutput(status: status, stdout: child.stdout, stderr: child.stderr)
}

/// A PostgreSQL of a test's own (scripts/pg), for tests that stop and start the server.
public final class ThrowawayPostgres: Sendable {
    public let directory: String
    public let url: String
    public let port: String

    public static func start() async throws -> ThrowawayPostgres {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("depot-pg-\(UUID().uuidString.prefix(8))").path
        let output = try await runProcess(packageRoot.appendingPathComponent("scripts/pg"), ["start", directory])
        guard output.status == 0 else { throw ScriptFailure(output: output) }
        let url = output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let port = try String(contentsOfFile: directory + "/port", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return ThrowawayPostgres(directory: directory, url: url, port: port)
    }

    init(directory: String, url: String, port: String) {
        self.directory = directory
        self.url = url
        self.port = port
    }

    /// Stops the server (fast shutdown: clients are disconnected).
    public func stop() async throws {
        let output = try await runProcess(packageRoot.appendingPathComponent("scripts/pg"), ["stop", directory])
        guard output.status == 0 else { throw ScriptFailure(output: output) }
    }

    /// Starts it again on the same port.
    public func restart() async throws {
        let output = try await runProcess(packageRoot.appendingPathComponent("scripts/pg"), ["start", directory, port])
        guard output.status == 0 else { throw ScriptFailure(output: output) }
    }

    /// Stops the server and removes its folder.
    public func destroy() async {
        _ = try? await stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    public struct ScriptFailure: Error, CustomStringConvertible {
        let output: ProcessOutput
        public var description: String { "scripts/pg failed (\(output.status)): \(output.stderr)" }
    }
}
