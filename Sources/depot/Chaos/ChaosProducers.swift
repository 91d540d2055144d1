import Depot
import DepotHTTP
import Foundation
import Synchronization

/// Producers of a chaos run. Each sends, until told to stop, single messages and batches of 64
/// to 120 (the batches that go in by COPY), and writes down what was answered 202; a request
/// that fails without an answer is counted, never retried, so a lost 202 cannot hide behind a retry.
final class ChaosProducers: Sendable {
    let ledger: ChaosLedger
    /// Messages per second each producer stores at most.
    let ratePerProducer: Double
    private let stop = Atomic(false)

    init(ledger: ChaosLedger, ratePerProducer: Double) {
        self.ledger = ledger
        self.ratePerProducer = ratePerProducer
    }

    /// Waits until a producer that has sent `sent` messages since `start` is back on its pace.
    private func keepPace(sent: Int, since start: ContinuousClock.Instant) async {
        let due = start + .seconds(Double(sent) / ratePerProducer)
        if due > .now { try? await Task.sleep(until: due) }
    }

    /// Every producer stops after the request it is sending.
    func finish() { stop.store(true, ordering: .relaxed) }

    /// The sizes a producer sends, in turn: a single, then a batch.
    static func nextSize(_ counter: Int) -> Int {
        counter.isMultiple(of: 2) ? 1 : Int.random(in: 64...120)
    }

    /// What one request or store call came to.
    private enum Answer {
        case accepted(ids: [String], heldIn: Bool)
        case refused(status: Int)
    }

    /// Sends at the pace until told to stop: `send(counter, size)` stores `size` messages; a
    /// throw is a request without an answer, counted and not retried.
    private func loop(_ send: (_ counter: Int, _ size: Int) async throws -> Answer) async {
        var counter = Int.random(in: 0...1)
        var sent = 0
        let start = ContinuousClock.now
        while !stop.load(ordering: .relaxed) {
            await keepPace(sent: sent, since: start)
            counter += 1
            let size = Self.nextSize(counter)
            sent += size
            do {
                switch try await send(counter, size) {
                case .accepted(let ids, let heldIn):
                    ledger.accept(ids, heldIn: heldIn)
                    continue
                case .refused(let status):
                    ledger.refused(status: status)
                }
            } catch {
                ledger.unanswered(messages: size)
            }
            // A node that is not listening yet or a database that is down: breathe.
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// One HTTP producer, posting to a random node each time.
    func runHTTP(ports: [Int], store: String, client: HTTPClient) async {
        await loop { counter, size in
            let request: HTTPRequest
            if size == 1 {
                request = HTTPRequest(method: "POST", target: "/stores/\(store)/messages", headers: ["Content-Type": "text/plain"],
                                      body: Data("chaos single \(counter)".utf8))
            } else {
                let lines = (0..<size).map { "{\"payload\":\"chaos batch \(counter) item \($0)\"}" }.joined(separator: "\n")
                request = HTTPRequest(method: "POST", target: "/stores/\(store)/messages/batch",
                                      headers: ["Content-Type": "application/x-ndjson"], body: Data(lines.utf8))
            }
            let port = ports.randomElement()!
            let response = try await client.send(request, to: URL(string: "http://127.0.0.1:\(port)\(request.target)")!, timeout: .seconds(20))
            guard response.status == 202 else { return .refused(status: response.status) }
            return .accepted(ids: try Self.acceptedIds(response.body), heldIn: response.headers["Depot-Held-In"] != nil)
        }
    }

    /// One producer through the Swift library's `Producer`, storing into `store`.
    func runLibrary(producer: Producer, store: String) async {
        await loop { counter, size in
            let receipt = size == 1
                ? try await producer.store(OutgoingMessage(text: "chaos library single \(counter)"), in: store)
                : try await producer.store((0..<size).map { OutgoingMessage(text: "chaos library batch \(counter) item \($0)") }, in: store)
            return .accepted(ids: receipt.receipts.map { $0.id.uuidString.lowercased() }, heldIn: receipt.heldIn != nil)
        }
    }

    /// The ids in a 202's body: `{"id": …}` for one message, `{"ids": […]}` for a batch.
    static func acceptedIds(_ body: Data) throws -> [String] {
        struct Accepted: Decodable {
            let id: String?
            let ids: [String]?
        }
        let accepted = try JSONDecoder().decode(Accepted.self, from: body)
        return (accepted.ids ?? accepted.id.map { [$0] } ?? []).map { $0.lowercased() }
    }
}
