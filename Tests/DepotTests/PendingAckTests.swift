@testable import Depot
import Foundation
import Testing

/// A lone member acks beside its next claim; an ack that fails must come back to be retried
/// with the next batch, not vanish (its messages would be delivered again after their leases).
@Suite("Acks overlapping the next claim")
struct PendingAckTests {
    struct Refused: Error {}

    @Test("a failed ack hands its ids back; a successful one and none at all hand back nothing")
    func failedAckIdsComeBack() async {
        let ids = (0..<3).map { _ in UUID() }
        var failing = PendingAck(ids) { throw Refused() }
        #expect(await failing.finish() == ids)
        #expect(await failing.finish() == [], "finishing twice must not hand the ids back twice")

        let acked = AckedIds()
        var succeeding = PendingAck(ids) { await acked.add(ids) }
        #expect(await succeeding.finish() == [])
        #expect(await acked.all == ids)

        var nothing = PendingAck()
        #expect(await nothing.finish() == [])
    }

    @Test("finish waits for the ack to end")
    func finishWaits() async {
        let acked = AckedIds()
        let id = UUID()
        var pending = PendingAck([id]) {
            try await Task.sleep(for: .milliseconds(50))
            await acked.add([id])
        }
        #expect(await pending.finish() == [])
        #expect(await acked.all == [id])
    }

    actor AckedIds {
        var all: [UUID] = []
        func add(_ ids: [UUID]) { all += ids }
    }
}
