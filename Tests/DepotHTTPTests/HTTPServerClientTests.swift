import DepotHTTP
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

@Suite("HTTP server and client")
struct HTTPServerClientTests {
    @Test("the client reuses one kept-alive connection for many requests and reads every body")
    func keepAliveRoundTrips() async throws {
        let echo = EchoBackend()
        let port = try echo.start()
        defer { echo.stop() }
        let client = HTTPClient()
        let url = URL(string: "http://127.0.0.1:\(port)/orders?x=1")!
        for index in 0..<200 {
            let body = Data("message \(index)".utf8)
            let response = try await client.send(
                HTTPRequest(method: "POST", target: "/", headers: ["Depot-Message-Id": "m\(index)", "Content-Type": "text/plain"], body: body),
                to: url, timeout: .seconds(5))
            #expect(response.status == 200)
            #expect(response.body == body)
            #expect(response.headers["content-type"] == "text/plain")
        }
        let counts = echo.snapshot()
        #expect(counts.requests == 200)
        #expect(counts.distinct == 200)
        #expect(counts.maximumConcurrent == 1)
    }

    @Test("hundreds of concurrent exchanges each get their own body back, large bodies included")
    func concurrentExchanges() async throws {
        let echo = EchoBackend()
        let port = try echo.start()
        defer { echo.stop() }
        let client = HTTPClient(maximumIdlePerHost: 16)
        let url = URL(string: "http://127.0.0.1:\(port)/")!
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<300 {
                group.addTask {
                    for round in 0..<3 {
                        let size = worker % 50 == 0 ? 300_000 : 100 + worker
                        let body = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &+ worker &+ round) })
                        let response = try await client.send(HTTPRequest(method: "POST", target: "/", body: body), to: url, timeout: .seconds(30))
                        #expect(response.status == 200)
                        #expect(response.body == body)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(echo.snapshot().requests == 900)
    }

    @Test("a server that closes after every answer gets a fresh connection for each request")
    func closeAfterEachAnswer() async throws {
        let server = try ScriptedServer(replies: ["HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na",
                                                  "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nb"], closeAfterEach: true)
        let client = HTTPClient()
        let url = URL(string: "http://127.0.0.1:\(server.port)/")!
        #expect(try await client.send(HTTPRequest(method: "GET", target: "/"), to: url, timeout: .seconds(5)).body == Data("a".utf8))
        #expect(try await client.send(HTTPRequest(method: "GET", target: "/"), to: url, timeout: .seconds(5)).body == Data("b".utf8))
    }

    @Test("a refused connection and a timeout are transport errors, not responses")
    func transportFailures() async throws {
        let client = HTTPClient()
        let closedPort = try freePort()
        await #expect(throws: HTTPTransportError.self) {
            _ = try await client.send(HTTPRequest(method: "POST", target: "/"), to: URL(string: "http://127.0.0.1:\(closedPort)/")!, timeout: .seconds(2))
        }
        let slow = EchoBackend(behaviour: .init(delayMilliseconds: 2000))
        let port = try slow.start()
        defer { slow.stop() }
        await #expect(throws: HTTPTransportError.timeout) {
            _ = try await client.send(HTTPRequest(method: "POST", target: "/"), to: URL(string: "http://127.0.0.1:\(port)/")!, timeout: .milliseconds(200))
        }
    }

    @Test("the echo back end fails the first attempts of each message when told to")
    func failFirst() async throws {
        let echo = EchoBackend(behaviour: .init(failFirst: 2))
        let port = try echo.start()
        defer { echo.stop() }
        let client = HTTPClient()
        let url = URL(string: "http://127.0.0.1:\(port)/")!
        var statuses: [Int] = []
        for _ in 0..<3 {
            statuses.append(try await client.send(HTTPRequest(method: "POST", target: "/", headers: ["Depot-Message-Id": "a"]), to: url, timeout: .seconds(2)).status)
        }
        #expect(statuses == [503, 503, 200])
        let config = try await client.send(HTTPRequest(method: "POST", target: "/", body: Data(#"{"status": 201}"#.utf8)),
                                           to: URL(string: "http://127.0.0.1:\(port)/_echo/config")!, timeout: .seconds(2))
        #expect(config.status == 200)
        #expect(try await client.send(HTTPRequest(method: "POST", target: "/"), to: url, timeout: .seconds(2)).status == 201)
        let bad = try await client.send(HTTPRequest(method: "POST", target: "/", body: Data(#"{"fail_rate": 7}"#.utf8)),
                                        to: URL(string: "http://127.0.0.1:\(port)/_echo/config")!, timeout: .seconds(2))
        #expect(bad.status == 400)
        #expect(String(decoding: bad.body, as: UTF8.self).contains("fail_rate"))
    }

    @Test("malformed requests get their status and the server goes on serving", arguments: [
        ("GARBAGE\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", 413),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        ("POST / HTTP/2.0\r\n\r\n", 505),
        ("POST / HTTP/1.1\nHost: x\n\n", 400),
        ("POST / HTTP/1.1\r\nBad Header\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nX: \(String(repeating: "a", count: 1 << 20))\r\n\r\n", 431),
    ])
    func malformedRequests(raw: String, status: Int) async throws {
        let echo = EchoBackend()
        let port = try echo.start()
        defer { echo.stop() }
        let answer = try await rawExchange(port: port, Array(raw.utf8))
        #expect(answer.hasPrefix("HTTP/1.1 \(status) "), "got \(answer.prefix(80))")
        #expect(answer.contains("\"error\""))
        let after = try await HTTPClient().send(HTTPRequest(method: "POST", target: "/", body: Data("ok".utf8)),
                                                to: URL(string: "http://127.0.0.1:\(port)/")!, timeout: .seconds(2))
        #expect(after.status == 200)
    }

    @Test("pipelined requests are answered in order, even when the first handler is the slower one")
    func pipelinedInOrder() async throws {
        let server = HTTPServer(.init()) { request in
            if request.path == "/slow" { try await Task.sleep(for: .milliseconds(300)) }
            return .text(200, String(request.path.dropFirst()))
        }
        try server.start()
        defer { server.stop() }
        let answer = try await rawExchange(port: server.port, Array("GET /slow HTTP/1.1\r\n\r\nGET /fast HTTP/1.1\r\nConnection: close\r\n\r\n".utf8))
        let slow = try #require(answer.range(of: "slow"))
        let fast = try #require(answer.range(of: "fast"))
        #expect(slow.lowerBound < fast.lowerBound)
        #expect(answer.components(separatedBy: "HTTP/1.1 200 ").count == 3)
    }

    @Test("a kept-alive connection that sits idle is closed after the idle timeout, but never before its answer has gone")
    func idleTimeout() async throws {
        var configuration = HTTPServer.Configuration()
        configuration.idleTimeout = .milliseconds(300)
        let server = HTTPServer(configuration) { request in
            if request.path == "/slow" { try await Task.sleep(for: .milliseconds(900)) }
            return .text(200, String(request.path.dropFirst()))
        }
        try server.start()
        defer { server.stop() }
        // rawExchange reads until the server closes, or gives up after 5 s.
        for path in ["/fast", "/slow"] {
            let started = ContinuousClock.now
            let answer = try await rawExchange(port: server.port, Array("GET \(path) HTTP/1.1\r\n\r\n".utf8))
            let waited = ContinuousClock.now - started
            #expect(answer.hasPrefix("HTTP/1.1 200 ") && answer.hasSuffix(String(path.dropFirst())), "\(path): \(answer)")
            #expect(waited < .seconds(4), "\(path): the idle connection was still open after \(waited)")
        }
    }

    @Test("a chunked request body is accepted and decoded")
    func chunkedRequest() async throws {
        let echo = EchoBackend()
        let port = try echo.start()
        defer { echo.stop() }
        let answer = try await rawExchange(port: port, Array("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".utf8))
        #expect(answer.hasPrefix("HTTP/1.1 200 "))
        #expect(answer.hasSuffix("hello world"))
    }

    @Test("a request cut off half way is answered 400 or dropped, and the server goes on")
    func cutOffRequest() async throws {
        let echo = EchoBackend()
        let port = try echo.start()
        defer { echo.stop() }
        let answer = try await rawExchange(port: port, Array("POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly part".utf8), halfClose: true)
        #expect(answer.isEmpty || answer.hasPrefix("HTTP/1.1 400 "))
        let after = try await HTTPClient().send(HTTPRequest(method: "GET", target: "/"), to: URL(string: "http://127.0.0.1:\(port)/")!, timeout: .seconds(2))
        #expect(after.status == 200)
    }
}

@Suite("HTTP client against unusual servers")
struct HTTPClientEdgeTests {
    @Test("interim 1xx answers are skipped, and each request gets its own final answer")
    func interimResponses() async throws {
        let server = try ScriptedServer(replies: [
            "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nX-N: 1\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 500 Internal Server Error\r\nX-N: 2\r\nContent-Length: 0\r\n\r\n",
        ])
        let client = HTTPClient()
        let url = URL(string: "http://127.0.0.1:\(server.port)/")!
        let first = try await client.send(HTTPRequest(method: "POST", target: "/"), to: url, timeout: .seconds(5))
        let second = try await client.send(HTTPRequest(method: "POST", target: "/"), to: url, timeout: .seconds(5))
        #expect(first.status == 200 && first.headers["X-N"] == "1")
        #expect(second.status == 500 && second.headers["X-N"] == "2")
    }

    @Test("a status line without a reason phrase is a response, not a malformed one")
    func emptyReason() async throws {
        let server = try ScriptedServer(replies: ["HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok", "HTTP/1.1 204\r\n\r\n"])
        let client = HTTPClient()
        let url = URL(string: "http://127.0.0.1:\(server.port)/")!
        #expect(try await client.send(HTTPRequest(method: "POST", target: "/"), to: url, timeout: .seconds(5)).body == Data("ok".utf8))
        #expect(try await client.send(HTTPRequest(method: "POST", target: "/"), to: url, timeout: .seconds(5)).status == 204)
    }

    @Test("a body that runs to the end of the connection arrives whole, even when it came with the head")
    func bodyUntilClose() async throws {
        let server = try ScriptedServer(replies: ["HTTP/1.0 200 OK\r\n\r\nhello world"], closeAfterEach: true)
        let response = try await HTTPClient().send(HTTPRequest(method: "GET", target: "/"),
                                                   to: URL(string: "http://127.0.0.1:\(server.port)/")!, timeout: .seconds(5))
        #expect(String(decoding: response.body, as: UTF8.self) == "hello world")
    }
}

/// A server that reads request heads on one connection and answers each with the next scripted
/// reply, byte for byte; for testing the client against replies the real server never sends.
final class ScriptedServer: @unchecked Sendable {
    let port: Int
    private let listener: Int32

    init(replies: [String], closeAfterEach: Bool = false) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(listener, pointer, length) == 0 && listen(listener, 8) == 0 && getsockname(listener, pointer, &length) == 0
            }
        }
        guard bound else { throw POSIXError(.EADDRINUSE) }
        port = Int(UInt16(bigEndian: address.sin_port))
        let fd = listener
        Thread {
            var connection: Int32 = -1
            for reply in replies {
                if connection < 0 { connection = accept(fd, nil, nil) }
                var seen: [UInt8] = []
                var byte: UInt8 = 0
                while !(seen.count >= 4 && Array(seen.suffix(4)) == [13, 10, 13, 10]), recv(connection, &byte, 1, 0) == 1 { seen.append(byte) }
                let bytes = Array(reply.utf8)
                _ = bytes.withUnsafeBytes { send(connection, $0.baseAddress, bytes.count, Int32(MSG_NOSIGNAL)) }
                if closeAfterEach { close(connection); connection = -1 }
            }
            if connection >= 0 { close(connection) }
            close(fd)
        }.start()
    }
}
