import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Calls `onSignal` (once per signal) when SIGTERM or SIGINT arrives, instead of dying at once:
/// long-running verbs use it to stop cleanly. Keep the returned sources alive while running.
func onTerminationSignals(_ onSignal: @escaping @Sendable (Int32) -> Void) -> [any DispatchSourceSignal] {
    [SIGTERM, SIGINT].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { onSignal(number) }
        source.resume()
        return source
    }
}
