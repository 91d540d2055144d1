import Depot
import Foundation

let messagesCommand = Command(
    name: "messages",
    summary: "Browse a store page by page, or delete, retry now or move single messages (depot.browse and friends).",
    arguments: [("browse STORE | delete ID… | retry ID… | move ID… --to STORE", "what to do")],
    options: [
        OptionSpec(name: "state", value: "STATE", help: "with browse: only ready, delayed or in_flight messages"),
        OptionSpec(name: "header", value: "K=V", repeatable: true, help: "with browse: only messages with this header (repeatable: all of them)"),
        OptionSpec(name: "after", value: "CURSOR", help: "with browse: the page after this cursor (the last row's, printed below the table)"),
        OptionSpec(name: "limit", short: "n", value: "N", help: "with browse: at most N, 1 to 10000 (default 50)"),
        OptionSpec(name: "to", value: "STORE", help: "with move: the store the messages go to"),
        OptionSpec(name: "force", help: "with delete, retry and move: also messages being delivered (their lease is dropped)"),
        OptionSpec(name: "json", help: "print JSON for scripts"),
    ],
    notes: """
        delete removes messages for good; retry makes them claimable now with attempts 0; move puts
        them in another store under the same ids, ready now. Each is all or nothing: an id that is
        not a message, or a message being delivered (without --force), changes nothing.
        Examples: depot messages browse orders --state delayed --header tenant=acme -n 20
                  depot messages retry 0b6c… 7f21…      depot messages move 0b6c… --to orders-replay
        """
) { arguments in
    let usage = "depot messages browse STORE [--state S] [--header K=V]… [--after CURSOR] [-n N] | delete ID… | retry ID… | move ID… --to STORE"
    guard let verb = arguments.positional.first else { throw CLIFailure.usage(usage) }
    let rest = Array(arguments.positional.dropFirst())
    let json = arguments.flag("json")
    switch verb {
    case "browse":
        guard rest.count == 1 else { throw CLIFailure.usage(usage) }
        var headers: [String: String]?
        for pair in arguments.all("header") {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                throw CLIFailure.usage("--header must be NAME=VALUE, got '\(pair)'")
            }
            headers = (headers ?? [:]).merging([String(pair[..<equals]): String(pair[pair.index(after: equals)...])]) { $1 }
        }
        let limit = try arguments.integer("limit", in: 1...10000) ?? 50
        let page = try await withDatabase {
            try await MessageOperations(pool: $0).browse(rest[0], state: arguments.value("state"), headers: headers,
                                                         after: arguments.value("after"), limit: limit)
        }
        if json { return try printJSON(page) }
        printTable(["ID", "STATE", "PRIORITY", "ATTEMPTS", "AGE", "HELD BY", "GROUP", "PREVIEW"], page.map { message in
            [message.id.uuidString.lowercased(), message.state, String(message.priority), String(message.attempts),
             age(message.createdAt), cell(message.lockedBy, limit: 30), cell(message.groupKey, limit: 20), cell(message.preview, limit: 50)]
        })
        if page.count == limit, let last = page.last { print("next page: --after \(last.cursor)") }
    case "delete", "retry", "move":
        guard !rest.isEmpty else { throw CLIFailure.usage("\(verb) needs message ids; usage: \(usage)") }
        let ids = try rest.map { text in
            guard let id = UUID(uuidString: text) else {
                throw CLIFailure.usage("'\(text)' is not a message id such as 0b6c7e4e-8a56-4d9b-9c1e-2f0a6d1c3b55")
            }
            return id
        }
        let force = arguments.flag("force")
        let target = arguments.value("to")
        if verb == "move", target == nil { throw CLIFailure.usage("move needs --to STORE; usage: \(usage)") }
        if verb != "move", target != nil { throw CLIFailure.usage("--to goes with move only; usage: \(usage)") }
        let changed = try await withDatabase { pool in
            let operations = MessageOperations(pool: pool)
            switch verb {
            case "delete": return try await operations.delete(ids, force: force)
            case "retry": return try await operations.retryNow(ids, force: force)
            default: return try await operations.move(ids, to: target!, force: force)
            }
        }
        let done = ["delete": "deleted", "retry": "made ready", "move": "moved"][verb]!
        if json { return try printJSON(["changed": changed]) }
        print("\(done) \(changed) message\(changed == 1 ? "" : "s")\(verb == "move" ? " to \(target!)" : "")")
    default:
        throw CLIFailure.usage("unknown messages verb '\(verb)'; use browse, delete, retry or move")
    }
}
