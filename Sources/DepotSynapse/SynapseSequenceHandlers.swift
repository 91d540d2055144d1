import Depot
import Foundation

/// Which handler a processor gets for a Synapse sequence it names. Depot runs no mediation: a
/// sequence that only calls one endpoint, logs and drops becomes the stock `call:ENDPOINT`,
/// `log` or `drop` handler; any other becomes a handler of the same name, which the node must
/// register (or it disables the processor, saying the handler is missing).
struct SequenceHandlers {
    struct Choice {
        var name: String
        /// Whether the stock `depot node` binary has this handler.
        var isStock: Bool
        var explanation: String
    }

    let sequences: [String: SynapseSequence]

    init(sequences: [SynapseSequence]) {
        self.sequences = Dictionary(sequences.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    func handler(for sequenceName: String) -> Choice {
        let custom = Choice(name: sequenceName, isStock: false, explanation:
            "sequence \(sequenceName) is Synapse mediation Depot cannot run; mapped to handler \"\(sequenceName)\": register a handler of that name "
            + "in your node (HandlerRegistry.register), or the node disables the processor saying the handler is missing")
        guard let sequence = sequences[sequenceName] else { return custom }
        var endpoints: [String] = []
        var steps: [String] = []
        for mediator in sequence.mediators {
            switch mediator.name {
            case "log", "drop":
                steps.append(mediator.name)
            case "call", "send":
                guard let key = mediator.child("endpoint")?.attributes["key"], mediator.children.count == 1 else { return custom }
                endpoints.append(key)
                steps.append("\(mediator.name) \(key)")
            case "description":
                continue
            default:
                return Choice(name: sequenceName, isStock: false, explanation: custom.explanation + " (it holds a <\(mediator.name)> mediator)")
            }
        }
        let summary = steps.joined(separator: ", ")
        if endpoints.count == 1, steps.last == "drop" || !steps.contains("drop") {
            return Choice(name: "call:\(endpoints[0])", isStock: true, explanation:
                "sequence \(sequenceName) (\(summary)) → stock handler call:\(endpoints[0]): sends the message to endpoint \(endpoints[0]) and logs the reply; a non-2xx fails the attempt")
        }
        if endpoints.isEmpty, steps.contains("log") {
            return Choice(name: "log", isStock: true, explanation: "sequence \(sequenceName) (\(summary)) → stock handler log: logs each message and acks it")
        }
        if endpoints.isEmpty, !steps.isEmpty {
            return Choice(name: "drop", isStock: true, explanation: "sequence \(sequenceName) (\(summary)) → stock handler drop: acks each message")
        }
        return custom
    }
}
