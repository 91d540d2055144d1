import Dispatch

/// A one-shot timer for the waits of a node (a deadline, a wake-up signal, a long poll): `fire`
/// runs once after `delay` unless the returned item is cancelled first. A dispatch timer rather
/// than a sleeping task: cancelling it when the wait ends first (nearly always) wakes nothing,
/// where a cancelled sleeping task woke a thread only to end.
enum Timeout {
    @discardableResult
    static func after(_ delay: Duration, _ fire: @escaping @Sendable () -> Void) -> DispatchWorkItem {
        let item = DispatchWorkItem(block: fire)
        let (seconds, attoseconds) = delay.components
        // DispatchTime + seconds clamps, so a delay of centuries is simply no deadline.
        DispatchQueue.global().asyncAfter(deadline: .now() + (Double(seconds) + Double(attoseconds) / 1e18), execute: item)
        return item
    }
}
