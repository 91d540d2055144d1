import Depot
import Foundation

/// Message processors → `depot.processors` rows: the class gives the kind, attributes and
/// parameters give the columns.
enum ProcessorMapping {
    /// Processor classes Depot runs, and the kind each becomes.
    static let kinds: [String: ProcessorKind] = [
        "org.apache.synapse.message.processor.impl.forwarder.ScheduledMessageForwardingProcessor": .forwarding,
        "org.apache.synapse.message.processor.impl.sampler.SamplingProcessor": .sampling,
        "org.apache.synapse.message.processor.impl.failover.FailoverScheduledMessageForwardingProcessor": .failoverForwarding,
    ]

    /// Parameters that name a sequence; each becomes a handler column.
    static let sequenceParameters: Set<String> = [
        "sequence", "message.processor.reply.sequence", "message.processor.fault.sequence", "message.processor.deactivate.sequence",
    ]

    /// MI delivers a store in order when one forwarding processor consumes it: `in_order` stays
    /// on for those, with a note, and goes off where several processors share a store (they
    /// balance its load, and no order holds across them), with a note saying why.
    static func settleOrder(_ plan: inout ImportPlan) {
        let consumers = Dictionary(grouping: plan.processors, by: \.store).mapValues(\.count)
        for index in plan.processors.indices where plan.processors[index].inOrder {
            let row = plan.processors[index]
            let subject = "messageProcessor \(row.name)"
            if consumers[row.store, default: 0] > 1 {
                plan.processors[index].inOrder = false
                plan.notes.append(ImportNote(.note, row.source.location, subject,
                    "in_order is off: \(consumers[row.store]!) processors share store \(row.store) and balance its load, so no order holds across them"))
            } else {
                plan.notes.append(ImportNote(.note, row.source.location, subject,
                    "in_order is on: as in MI, store \(row.store) is delivered in order, its head retried until it is delivered, dropped or the processor deactivates, one message at a time across the cluster; set in_order = false to let later messages overtake one waiting for its retry"))
            }
        }
    }

    static func map(_ processor: SynapseMessageProcessor, handlers: SequenceHandlers, into plan: inout ImportPlan) -> ImportedProcessor? {
        let subject = "messageProcessor \(processor.name)"
        guard let className = processor.className, let kind = kinds[className] else {
            plan.notes.append(ImportNote(.warning, processor.location, subject,
                                         "class \(processor.className ?? "(none)") is not a processor Depot runs (forwarding, sampling, failover forwarding); not imported"))
            return nil
        }
        guard let store = processor.messageStore, !store.isEmpty else {
            plan.errors.append(ImportNote(.error, processor.location, subject, "has no messageStore attribute; name the store it consumes"))
            return nil
        }
        var row = ImportedProcessor(name: processor.name, kind: kind, store: store,
                                    source: ImportSource(element: "messageProcessor", name: processor.name, type: className, location: processor.location))
        row.targetEndpoint = processor.targetEndpoint
        var throttle = Throttle()
        for parameter in processor.parameters {
            let subject = "\(subject) parameter \(parameter.name)"
            if Placeholder.holds(parameter.value) {
                plan.notes.append(Placeholder.note(parameter, subject))
                continue
            }
            if parameter.name == "throttle" || parameter.name == "throttle.interval" {
                throttle.read(parameter, subject: subject, into: &plan)
                continue
            }
            apply(parameter, subject: subject, to: &row, handlers: handlers, into: &plan)
        }
        row.rateLimit = throttle.rateLimit(subject: subject, location: processor.location, into: &plan)
        row.inOrder = kind == .forwarding
        if kind == .sampling, !processor.parameters.contains(where: { $0.name == "max.delivery.drop" }) {
            row.maxDeliveryDrop = true
            plan.notes.append(ImportNote(.note, processor.location, subject,
                "max_delivery_drop is on: MI's sampler never deactivates on its own, so a message that used its attempts is dead-lettered and the flow goes on"))
        }
        if kind == .sampling, row.targetEndpoint != nil {
            plan.notes.append(ImportNote(.note, processor.location, subject, "targetEndpoint is kept, but a sampling processor hands messages to its handler"))
        }
        return row
    }

    /// Sets the column `parameter` maps to, or notes why it maps to none.
    private static func apply(_ parameter: SynapseParameter, subject: String, to row: inout ImportedProcessor,
                              handlers: SequenceHandlers, into plan: inout ImportPlan) {
        let value = parameter.value.trimmingCharacters(in: .whitespacesAndNewlines)
        func note(_ severity: ImportNote.Severity, _ text: String) {
            plan.notes.append(ImportNote(severity, parameter.location, subject, text))
        }
        switch parameter.name {
        case "interval":
            if let number = Values.int(parameter, subject, into: &plan) { row.intervalMilliseconds = number }
        case "cronExpression", "cron.expression":
            guard !value.isEmpty else { return }
            let converted = QuartzCron.convert(value)
            row.cron = converted.expression
            if let explanation = converted.note { note(.note, explanation) }
        case "client.retry.interval":
            if let number = Values.int(parameter, subject, into: &plan) { row.retryIntervalMilliseconds = number }
        case "max.delivery.attempts":
            if let number = Values.int(parameter, subject, into: &plan) { row.maxDeliveryAttempts = number }
        case "max.delivery.drop":
            if let flag = Values.bool(parameter, subject, into: &plan) { row.maxDeliveryDrop = flag }
        case "is.active":
            if let flag = Values.bool(parameter, subject, into: &plan) { row.isActive = flag }
        case "member.count":
            if let number = Values.int(parameter, subject, into: &plan) { row.memberCount = number }
            note(.note, "member_count counts members on each node that runs the processor: \(row.memberCount) per node, not in all; use rate_limit for a pace that holds for the whole cluster")
        case "concurrency":
            if let number = Values.int(parameter, subject, into: &plan) { row.concurrency = number }
            if row.kind != .sampling { note(.note, "concurrency is used by sampling processors; a \(row.kind) member takes batch_size messages per interval") }
        case "pinnedServers", "bind.processor.server":
            row.pinnedServers = value.split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(String.init)
            if !row.pinnedServers.isEmpty { note(.note, "pinned_servers are Depot node names (depot node --name), not Synapse server names") }
        case "non.retry.status.codes":
            var codes: [Int] = []
            for part in value.split(whereSeparator: { $0 == "," || $0.isWhitespace }) {
                guard let code = Int(part) else {
                    plan.errors.append(ImportNote(.error, parameter.location, subject, "\"\(part)\" is not an HTTP status code"))
                    return
                }
                codes.append(code)
            }
            row.nonRetryStatusCodes = codes
        case "message.target.store.name":
            row.targetStore = value.isEmpty ? nil : value
        case "message.processor.failMessagesStore":
            row.failStore = value.isEmpty ? nil : value
        case "target.endpoint":
            if row.targetEndpoint == nil || row.targetEndpoint == value {
                row.targetEndpoint = value
            } else {
                note(.warning, "differs from the targetEndpoint attribute (\(row.targetEndpoint!)); the attribute wins, as in Synapse")
            }
        case "sequence", "message.processor.reply.sequence", "message.processor.fault.sequence", "message.processor.deactivate.sequence":
            guard !value.isEmpty else { return }
            let handler = handlers.handler(for: value)
            switch parameter.name {
            case "sequence": row.handler = handler.name
            case "message.processor.reply.sequence": row.replyHandler = handler.name
            case "message.processor.fault.sequence": row.faultHandler = handler.name
            default: row.deactivateHandler = handler.name
            }
            note(handler.isStock ? .note : .warning, handler.explanation)
        case "max.store.connection.attempts":
            if let number = Values.int(parameter, subject, into: &plan) {
                guard number == -1 || number >= 1 else {
                    plan.errors.append(ImportNote(.error, parameter.location, subject, "must be -1 (keep trying) or at least 1, got \(number)"))
                    return
                }
                row.maxStoreConnectionAttempts = number
            }
        case "store.connection.retry.interval":
            if let number = Values.int(parameter, subject, into: &plan) { row.storeConnectionRetryIntervalMilliseconds = max(10, number) }
        case "throttle.limit":
            note(.warning, "not mapped: the pace is rate_limit, from throttle and throttle.interval")
        case "quartz.conf", "axis2.repo", "axis2.config", "bind.to.server":
            note(.note, "not mapped: Synapse runtime setting with no Depot equivalent")
        default:
            note(.warning, "unknown processor parameter; ignored")
        }
    }
}
