import DepotHTTP
import Foundation
import Testing
import TestSupport

/// A failed connection says what happened, for last_error, deactivated_reason and the logs.
@Suite("Connect errors")
struct ConnectErrorTests {
    @Test("a refused connection is reported as refused, at once, not as timed out after the whole timeout")
    func refusedIsNotTimedOut() async throws {
        let port = try freePort()
        let started = ContinuousClock.now
        do {
            _ = try await HTTPClient().send(HTTPRequest(method: "POST", target: "/"), to: URL(string: "http://127.0.0.1:\(port)/")!, timeout: .seconds(30))
            Issue.record("a closed port answered")
        } catch {
            #expect("\(error)".contains("Connection refused"), "\(error)")
            #expect(!"\(error)".contains("timed out"), "\(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(5))
    }
}
