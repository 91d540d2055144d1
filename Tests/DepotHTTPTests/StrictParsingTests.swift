import DepotHTTP
import Foundation
import Testing
import TestSupport

/// Where RFC 9112 is strict, the server is too: what two parsers could read differently is a 400.
@Suite("Strict HTTP parsing")
struct StrictParsingTests {
    static func chunked(_ sizeLine: String) -> [UInt8] {
        Array("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\(sizeLine)\r\nhello\r\n0\r\n\r\n".utf8)
    }

    @Test("chunk sizes with a sign, a space before or after, or 0x are refused with 400", arguments: ["+5", "-5", " 5", "5 ", "5\t", "0x5", "5 x", ""])
    func malformedChunkSizes(size: String) async throws {
        let echo = EchoBackend()
        let port = try echo.start()
        defer { echo.stop() }
        let answer = try await rawExchange(port: port, Self.chunked(size))
        #expect(answer.hasPrefix("HTTP/1.1 400 "), "\(size.debugDescription): \(answer.prefix(120))")
        #expect(echo.snapshot().requests == 0)
    }

    @Test("chunk sizes of hex digits, with extensions after ; (spaces allowed before it), are read", arguments: ["5", "05", "5;name=value", "5 ;ext", "5\t;ext"])
    func wellFormedChunkSizes(size: String) async throws {
        let echo = EchoBackend()
        let port = try echo.start()
        defer { echo.stop() }
        let answer = try await rawExchange(port: port, Self.chunked(size))
        #expect(answer.hasPrefix("HTTP/1.1 200 "), "\(size.debugDescription): \(answer.prefix(120))")
        #expect(answer.hasSuffix("hello"))
    }
}
