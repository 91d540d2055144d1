import Depot
import Foundation
import Postgres

/// One statement of an import, the element it writes, and the row it reports.
public struct ImportStatement: Sendable {
    public var source: ImportSource
    /// The table and row it writes, reported in `WrittenRow`; nil for the failover columns'
    /// update of a store already reported.
    public var writes: (table: String, name: String)?
    public var sql: SQL
}

extension ImportPlan {
    /// What an import runs, in order: every store without its failover store, then the failover
    /// columns (a store may name one defined after it, and the foreign key needs it to exist),
    /// then endpoints, then processors. The write and `--dry-run`'s script are both these.
    public var statements: [ImportStatement] {
        var statements: [ImportStatement] = []
        for store in stores {
            statements.append(ImportStatement(source: store.source, writes: ("stores", store.name),
                                              sql: StoreTable.storeImport(name: store.name, kind: store.kind, description: store.description)))
        }
        for store in stores {
            statements.append(ImportStatement(source: store.source, writes: nil,
                                              sql: StoreTable.storeFailoverSet(name: store.name, failoverStore: store.failoverStore,
                                                                               guaranteedDelivery: store.guaranteedDelivery)))
        }
        for endpoint in endpoints {
            statements.append(ImportStatement(source: endpoint.source, writes: ("endpoints", endpoint.name),
                                              sql: EndpointTable.endpointImport(name: endpoint.name, url: endpoint.url, method: endpoint.method,
                                                                                timeoutMilliseconds: endpoint.timeoutMs)))
        }
        for processor in processors {
            statements.append(ImportStatement(source: processor.source, writes: ("processors", processor.name),
                                              sql: ProcessorTable.processorImport(processor.row)))
        }
        return statements
    }

    /// The statements an import runs, with values written as SQL literals: what `--dry-run`
    /// prints. Runnable in psql; the import itself binds every value as a parameter.
    public var sqlScript: String {
        var lines = ["BEGIN;"]
        for statement in statements {
            // What a file names goes into a comment on one line: a line break would end the comment
            // and run the rest (a parameter named "&#10;DROP TABLE …" did, piped into psql).
            let source = statement.source
            lines.append("-- " + Quoting.oneLine("\(source.element) \(source.name) (\(source.location))"))
            // Every value the import binds is text, a number, a flag or an array of those.
            lines.append(((try? statement.sql.withLiterals()) ?? "-- (a value that cannot be written as a literal)") + ";")
        }
        lines.append("COMMIT;")
        return lines.joined(separator: "\n")
    }
}
