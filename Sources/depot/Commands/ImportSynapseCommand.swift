import Depot
import DepotSynapse
import Foundation

let importSynapseCommand = Command(
    name: "import-synapse",
    summary: "Import Synapse / WSO2 MI message stores, message processors and address endpoints as Depot rows.",
    arguments: [("FILE.xml…", "Synapse XML: a <definitions> root or one <messageStore>, <messageProcessor> or <endpoint> per file")],
    options: [
        OptionSpec(name: "dry-run", help: "print the SQL the import would run and every note; write nothing"),
        OptionSpec(name: "json", help: "print the mapped rows, the notes and what was written as JSON for scripts"),
    ],
    notes: """
        Writes depot.stores, then depot.endpoints, then depot.processors, in one transaction: all or
        nothing. Re-importing updates rows of the same name to what the files say (INSERT … ON CONFLICT
        DO UPDATE): importing the same files twice changes nothing, and rows the files do not name are
        left alone (nothing is deleted). processors.batch_size keeps its value; Synapse has none.
        Mapping: JMS, RabbitMQ, JDBC and resequence stores become postgres stores (their broker
        parameters are not mapped); the in-memory store (or no class) becomes memory. Forwarding,
        sampling and failover forwarding processors keep their parameters as columns. A sequence that
        only calls one endpoint, logs or drops becomes the stock handler call:ENDPOINT, log or drop;
        any other becomes a handler of the same name, which your node must register. Address and http
        endpoints become endpoint rows; other endpoint types, proxies and APIs are not imported.
        Everything not mapped one to one is printed as a note or warning saying what happened.
        Exit status: 65 malformed XML (file:line), a bad value, or a row the database refuses (the
        element's file:line and the database's message; nothing written); 66 a file is missing.
        Example: depot import-synapse synapse-config/*.xml --dry-run
        """
) { arguments in
    guard !arguments.positional.isEmpty else {
        throw CLIFailure.usage("missing argument; usage: depot import-synapse FILE.xml… [--dry-run] [--json]")
    }
    var configuration = SynapseConfiguration()
    for file in arguments.positional {
        guard FileManager.default.fileExists(atPath: file) else {
            throw CLIFailure.noInput("cannot read \(file): no such file; check the path")
        }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: file)) } catch {
            throw CLIFailure.noInput("cannot read \(file): \(error.localizedDescription)")
        }
        do { try configuration.read(data, file: file) } catch let error as MalformedXML {
            throw CLIFailure.data(error.description)
        }
    }
    let plan = SynapseMapping.plan(configuration)
    guard plan.errors.isEmpty else { throw CLIFailure.data(ImportRefused(problems: plan.errors).description) }
    let dryRun = arguments.flag("dry-run")
    var written: [WrittenRow] = []
    if !dryRun {
        do {
            written = try await withDatabase { try await SynapseImport(pool: $0).write(plan) }
        } catch let error as ImportRefused {
            throw CLIFailure.data(error.description)
        }
    }
    if arguments.flag("json") {
        return try printJSON(ImportReport(dryRun: dryRun, stores: plan.stores, endpoints: plan.endpoints,
                                          processors: plan.processors, notes: plan.notes, written: written))
    }
    if dryRun {
        print("-- dry run: nothing was written; the import would run:")
        print(plan.sqlScript)
        plan.notes.forEach { print("-- " + Quoting.oneLine("\($0)")) }
        return
    }
    printImport(plan, written: written)
}

/// What `--json` prints.
private struct ImportReport: Encodable {
    var dryRun: Bool
    var stores: [ImportedStore]
    var endpoints: [ImportedEndpoint]
    var processors: [ImportedProcessor]
    var notes: [ImportNote]
    var written: [WrittenRow]
}

/// One line per row (`store JMSMS (postgres) ← messageStore JMSMS (…JmsStore)`), the notes, and a total.
private func printImport(_ plan: ImportPlan, written: [WrittenRow]) {
    for store in plan.stores {
        print(Quoting.oneLine("store \(store.name) (\(store.kind)) ← messageStore \(store.source.name) (\(store.source.type))"))
    }
    for endpoint in plan.endpoints {
        print(Quoting.oneLine("endpoint \(endpoint.name) (\(endpoint.method) \(endpoint.url)) ← endpoint \(endpoint.source.name) (\(endpoint.source.type))"))
    }
    for processor in plan.processors {
        print(Quoting.oneLine("processor \(processor.name) (\(processor.kind)) ← messageProcessor \(processor.source.name) (\(processor.source.type))"))
    }
    plan.notes.forEach { print(Quoting.oneLine("\($0)")) }
    let created = written.filter(\.created).count
    func count(_ number: Int, _ noun: String) -> String { "\(number) \(noun)\(number == 1 ? "" : "s")" }
    print("imported \(count(plan.stores.count, "store")), \(count(plan.endpoints.count, "endpoint")), "
          + "\(count(plan.processors.count, "processor")) (\(created) created, \(written.count - created) updated); "
          + count(plan.warnings.count, "warning"))
}
