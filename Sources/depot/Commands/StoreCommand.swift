import Depot
import Foundation
import Postgres

#if canImport(Glibc)
import Glibc
#endif

let storeCommand = Command(
    name: "store",
    summary: "Put one message into a store and print its id.",
    arguments: [("STORE", "the store's name (declare it with: depot stores add STORE)")],
    options: [
        OptionSpec(name: "data", value: "TEXT", help: "the payload as text (content type text/plain unless --content-type)"),
        OptionSpec(name: "file", value: "PATH", help: "read the payload from a file"),
        OptionSpec(name: "header", value: "K=V", repeatable: true, help: "a message header"),
        OptionSpec(name: "priority", value: "N", help: "higher is delivered first (default 0)"),
        OptionSpec(name: "delay", value: "DURATION", help: "not deliverable before this: 500ms, 10s, 5m, 2h, 1d"),
        OptionSpec(name: "key", value: "KEY", help: "idempotency key: the same key again stores nothing and prints the first id"),
        OptionSpec(name: "content-type", value: "TYPE", help: "the payload's media type"),
        OptionSpec(name: "group", value: "GROUP", help: "group key: a group's messages go one at a time, in order"),
    ],
    notes: """
        Without --data or --file the payload is read from standard input.
        Example: echo '{"order": 7}' | depot store orders --content-type application/json --key order-7
        """
) { arguments in
    let store = try arguments.positionals(exactly: 1, usage: storeCommand.usage)[0]
    var message = OutgoingMessage(payload: try readPayload(arguments))
    if arguments.value("data") != nil { message.contentType = "text/plain; charset=utf-8" }
    if let type = arguments.value("content-type") { message.contentType = type }
    for header in arguments.all("header") {
        guard let equals = header.firstIndex(of: "="), equals != header.startIndex else {
            throw CLIFailure.usage("--header needs KEY=VALUE, got '\(header)'; for example --header source=billing")
        }
        message.headers[String(header[..<equals])] = String(header[header.index(after: equals)...])
    }
    message.priority = try arguments.integer("priority", in: Int(Int32.min)...Int(Int32.max)) ?? 0
    message.delay = try arguments.duration("delay") ?? .zero
    message.idempotencyKey = arguments.value("key")
    message.groupKey = arguments.value("group")
    let receipt = try await withDatabase { pool in try await PostgresStore(name: store, pool: pool).store(message) }
    print(receipt.id.uuidString.lowercased())
    if !receipt.created {
        FileHandle.standardError.write(Data("depot: key '\(message.idempotencyKey ?? "")' was stored before; nothing new was stored\n".utf8))
    }
}

private func readPayload(_ arguments: ParsedArguments) throws -> Data {
    let data = arguments.value("data"), file = arguments.value("file")
    if data != nil && file != nil { throw CLIFailure.usage("give --data or --file, not both") }
    if let data { return Data(data.utf8) }
    if let file {
        guard FileManager.default.fileExists(atPath: file) else {
            throw CLIFailure.noInput("cannot read --file \(file): no such file; check the path")
        }
        do { return try Data(contentsOf: URL(fileURLWithPath: file)) } catch {
            throw CLIFailure.noInput("cannot read --file \(file): \(error.localizedDescription)")
        }
    }
    if isatty(STDIN_FILENO) == 1 {
        throw CLIFailure.usage("no payload: give --data TEXT, --file PATH, or pipe it on standard input")
    }
    return FileHandle.standardInput.readDataToEndOfFile()
}
