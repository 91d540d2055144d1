import Depot
import Foundation

/// Synapse's resequence message store (`ResequenceMessageStore`) → a resequencing processor.
///
/// In Synapse the store itself hands its messages out in the order of a number read from each
/// message (`store.resequence.id.path`), one sequence per store, skipping a gap after
/// `store.resequence.timeout`. In Depot producers still store into the store of that name; a
/// resequencing processor `NAME-resequencer` moves its messages, in order, into the store
/// `NAME/in-order`, which the processors that consumed `NAME` in Synapse consume instead. The
/// whole store is one sequence: the processor's `correlation_key` is the store's name.
enum ResequenceStore {
    static let className = "org.apache.synapse.message.store.impl.resequencer.ResequenceMessageStore"

    /// The store the resequenced messages of store `name` go into.
    static func inOrderStore(of name: String) -> String { name + "/in-order" }

    /// Adds the in-order store and the resequencing processor for `store`, with notes; a path
    /// Depot cannot read or a timeout that is not a number is an error.
    static func map(_ store: SynapseMessageStore, into plan: inout ImportPlan) {
        let subject = "messageStore \(store.name)"
        let source = ImportSource(element: "messageStore", name: store.name, type: className, location: store.location)
        let target = inOrderStore(of: store.name)
        plan.stores.append(ImportedStore(name: target, kind: .postgres, failoverStore: nil, guaranteedDelivery: false,
                                         description: "store \(store.name) in sequence order (imported from Synapse resequence messageStore \(store.name))",
                                         source: source))
        var row = ImportedProcessor(name: "\(store.name)-resequencer", kind: .resequencing, store: store.name, source: source)
        row.targetStore = target
        row.correlationKey = store.name
        row.intervalMilliseconds = 0
        var pathSeen = false, timeoutSeen = false
        for parameter in store.parameters {
            let subject = "\(subject) parameter \(parameter.name)"
            switch parameter.name {
            case "store.resequence.id.path":
                pathSeen = true
                let path = (parameter.expression ?? parameter.value).trimmingCharacters(in: .whitespacesAndNewlines)
                switch SequencePath.header(in: path) {
                case .header(let name):
                    row.sequenceHeader = name
                    plan.notes.append(ImportNote(.note, parameter.location, subject,
                        "\"\(path)\" → sequence_header \"\(name)\": the number comes from the message header \(name) (over HTTP ingress, send it as Depot-Header-\(name))"))
                case .refused(let why):
                    plan.errors.append(ImportNote(.error, parameter.location, subject,
                        "\"\(path)\" \(why); Depot's resequencer reads the sequence number from a message header. Put the number in a "
                        + "transport header before the store mediator (<property name=\"Sequence-Number\" expression=\"\(path)\" scope=\"transport\"/>, "
                        + "or have the producer send it as an HTTP header) and set this parameter to $trp:Sequence-Number"))
                }
            case "store.resequence.timeout":
                timeoutSeen = true
                guard let value = Values.int(parameter, subject, into: &plan) else { continue }
                row.gapTimeoutMilliseconds = value < 0 ? nil : value * 1000
                plan.notes.append(ImportNote(.note, parameter.location, subject, value < 0
                    ? "\(value) → gap_timeout_ms NULL: as in Synapse, a missing number is waited for until it comes"
                    : "\(value) → gap_timeout_ms \(value * 1000): Synapse's store multiplies this value by 1000 and skips a gap once that many "
                        + "milliseconds passed since it last handed a message out (its documentation calls the value a count of polls); "
                        + "Depot skips a gap once the message behind it has waited gap_timeout_ms, and records it in depot.sequence_gaps"))
            default:
                continue  // The store's other parameters are the store row's (SynapseMapping).
            }
        }
        if !pathSeen {
            plan.errors.append(ImportNote(.error, store.location, subject,
                                          "a resequence store needs store.resequence.id.path, the path of each message's sequence number; "
                                          + "Depot reads it from a header: <parameter name=\"store.resequence.id.path\" expression=\"$trp:Sequence-Number\"/>"))
        }
        if !timeoutSeen {
            plan.notes.append(ImportNote(.note, store.location, subject, "no store.resequence.timeout → gap_timeout_ms NULL: a missing number is waited for until it comes"))
        }
        plan.notes.append(ImportNote(.note, store.location, subject,
            "resequence store → store \(store.name), where producers store, and processor \(row.name) (resequencing), which moves its messages "
            + "into store \(target) in the order of their numbers, from 1, the whole store one sequence (correlation_key \(store.name))"))
        plan.processors.append(row)
    }

    /// Points the processors that consumed a resequence store at its in-order store (`stores` holds
    /// the names of the resequence stores), leaving the resequencers themselves on it.
    static func repoint(_ plan: inout ImportPlan, stores: Set<String>) {
        for index in plan.processors.indices where stores.contains(plan.processors[index].store) && plan.processors[index].kind != .resequencing {
            let store = plan.processors[index].store
            plan.processors[index].store = inOrderStore(of: store)
            plan.notes.append(ImportNote(.note, plan.processors[index].source.location, "messageProcessor \(plan.processors[index].name)",
                "consumes store \(inOrderStore(of: store)): the messages of resequence store \(store), in order"))
        }
    }
}

/// Where a Synapse path reads a sequence number from, as far as Depot can follow it.
enum SequencePath: Equatable {
    /// A transport header: `$trp:NAME` or `get-property('transport', 'NAME')`.
    case header(String)
    /// Anything else (the body by XPath or JSON path, a context property), and why.
    case refused(String)

    static func header(in path: String) -> SequencePath {
        if path.hasPrefix("$trp:") {
            let name = String(path.dropFirst(5))
            return isHeaderName(name) ? .header(name) : .refused("names no usable header after $trp:")
        }
        if let arguments = call("get-property", in: path) {
            if arguments.count == 2, arguments[0].lowercased() == "transport" {
                return isHeaderName(arguments[1]) ? .header(arguments[1]) : .refused("names no usable transport header")
            }
            return .refused("reads a message context property, which Depot does not keep with a stored message")
        }
        if path.hasPrefix("$ctx:") || path.hasPrefix("$axis2:") {
            return .refused("reads a message context property, which Depot does not keep with a stored message")
        }
        if path.hasPrefix("json-eval(") || path.hasPrefix("$.") || path.hasPrefix("$body") || path.hasPrefix("//") || path.hasPrefix("/") {
            return .refused("reads the message body (an XPath or JSON path), which Depot's resequencer cannot read")
        }
        return .refused("is an expression Depot's resequencer cannot evaluate (it reads the message body or a computed value)")
    }

    /// A header name: printable ASCII without spaces, colons or quotes.
    private static func isHeaderName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") && $0 != UInt8(ascii: "'") && $0 != UInt8(ascii: "\"") }
    }

    /// The quoted arguments of `function('a', "b")`, or nil when `path` is not that call of
    /// string literals alone.
    private static func call(_ function: String, in path: String) -> [String]? {
        guard path.hasPrefix(function + "("), path.hasSuffix(")") else { return nil }
        let inner = path.dropFirst(function.count + 1).dropLast()
        var arguments: [String] = []
        for part in inner.split(separator: ",", omittingEmptySubsequences: false) {
            let text = part.trimmingCharacters(in: .whitespaces)
            guard text.count >= 2, let quote = text.first, quote == "'" || quote == "\"", text.last == quote else { return nil }
            arguments.append(String(text.dropFirst().dropLast()))
        }
        return arguments
    }
}
