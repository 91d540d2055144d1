import Foundation

/// The bare-SQL figures of one run, each measured when a scenario first asks for it: right
/// before the Depot figure it judges, not all at the start. This machine's speed drifts by
/// 20–30% within an hour, and a ratio only means something when both sides met the same machine.
final class ReferenceBook: @unchecked Sendable {
    private let databaseURL: String
    /// Seconds per reference run; 0 measures nothing.
    let seconds: Int
    private let progress: @Sendable (String) -> Void
    private let lock = NSLock()
    private var measured: [ReferenceFigure] = []

    init(databaseURL: String, seconds: Int, progress: @escaping @Sendable (String) -> Void) {
        self.databaseURL = databaseURL
        self.seconds = seconds
        self.progress = progress
    }

    /// Measures the references in `keys` not measured yet in this run.
    func measure(_ keys: [String]) async throws {
        guard seconds > 0 else { return }
        let known = self.figures
        let wanted = Set(keys).subtracting(known.map(\.key))
        guard !wanted.isEmpty else { return }
        let fresh = try await BareSQLReference.run(databaseURL: databaseURL, seconds: seconds, keys: wanted,
                                                   measuredSoFar: known, progress: progress)
        lock.withLock { measured += fresh }
    }

    /// Messages/s by key, of what was measured so far.
    var values: [String: Double] {
        Dictionary(figures.map { ($0.key, $0.messagesPerSecond) }) { $1 }
    }

    /// What was measured, in the reference table's order.
    var figures: [ReferenceFigure] {
        let order = BareSQLReference.keys
        return lock.withLock { measured }.sorted { (order.firstIndex(of: $0.key) ?? 0) < (order.firstIndex(of: $1.key) ?? 0) }
    }
}
