import DepotHTTP
import Foundation

let echoServerCommand = Command(
    name: "echo-server",
    summary: "Run a back end for tests and demos that echoes requests and counts them by Depot-Message-Id.",
    options: [
        OptionSpec(name: "port", value: "P", help: "the port to listen on (required; 0 picks one and prints it)"),
        OptionSpec(name: "host", value: "HOST", help: "the address to listen on (default 127.0.0.1)"),
        OptionSpec(name: "status", value: "S", help: "the status of a successful answer (default 200)"),
        OptionSpec(name: "fail-first", value: "N", help: "answer 503 to the first N attempts of every message"),
        OptionSpec(name: "fail-rate", value: "X", help: "answer 503 to this fraction of requests, 0 to 1"),
        OptionSpec(name: "delay", value: "MS", help: "wait this many milliseconds before answering"),
    ],
    notes: """
        GET /_echo/counts reports requests, distinct message ids and requests per id as JSON.
        POST /_echo/config with JSON (status, fail_first, fail_rate, fail_status, delay_ms) changes
        the behaviour while it runs; POST /_echo/reset forgets the counts.
        Example: depot echo-server --port 9001 --fail-first 3
        """
) { arguments in
    guard let port = try arguments.integer("port", in: 0...65535) else {
        throw CLIFailure.usage("--port is required: depot echo-server --port 9001")
    }
    var behaviour = EchoBackend.Behaviour()
    behaviour.status = try arguments.integer("status", in: 100...599) ?? 200
    behaviour.failFirst = try arguments.integer("fail-first", in: 0...1_000_000) ?? 0
    behaviour.delayMilliseconds = try arguments.integer("delay", in: 0...3_600_000) ?? 0
    if let rate = arguments.value("fail-rate") {
        guard let value = Double(rate), (0...1).contains(value) else {
            throw CLIFailure.usage("--fail-rate must be a number from 0 to 1, got '\(rate)'")
        }
        behaviour.failRate = value
    }
    let host = arguments.value("host") ?? "127.0.0.1"
    let echo = EchoBackend(behaviour: behaviour)
    let bound: Int
    do { bound = try echo.start(host: host, port: port) } catch {
        throw CLIFailure.unavailable("\(error); is the port taken? pick another with --port")
    }
    FileHandle.standardOutput.write(Data("echo-server listening on \(host):\(bound)\n".utf8))
    let stopped = WaitForStop()
    let signals = onTerminationSignals { _ in stopped.signal() }
    defer { signals.forEach { $0.cancel() } }
    await stopped.wait()
    echo.stop()
    let counts = echo.snapshot()
    print("echo-server stopped: \(counts.requests) requests, \(counts.distinct) distinct messages")
}

/// Suspends until `signal()` is called once.
final class WaitForStop: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Void, Never>?
    private var signalled = false

    func signal() {
        let waiting = lock.withLock { () -> CheckedContinuation<Void, Never>? in
            signalled = true
            defer { continuation = nil }
            return continuation
        }
        waiting?.resume()
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let already = lock.withLock { () -> Bool in
                if signalled { return true }
                self.continuation = continuation
                return false
            }
            if already { continuation.resume() }
        }
    }
}
