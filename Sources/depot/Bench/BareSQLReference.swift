import DepotProcess
import Foundation
import Postgres

/// One bare-SQL figure measured with pgbench.
struct ReferenceFigure: Sendable, Codable {
    let key: String          // e.g. "insert-1/clients-8"
    let description: String  // "single-row INSERT, one per transaction, 8 clients"
    let messagesPerSecond: Double
}

/// The ceiling for Depot's figures: the bare SQL of its message cycle (store, claim, ack),
/// run by pgbench against a simplified copy of depot.messages, with no Depot code in the way.
enum BareSQLReference {
    static let schema = "depot_bench_ref"
    static let table = "depot_bench_ref.messages"

    /// Every reference's key, in the order a full measurement takes them.
    static var keys: [String] { scenarios.map(\.key) }

    /// Runs the reference scenarios named in `keys` (in their own order) for `seconds` each
    /// against `databaseURL` (a postgres:// URL with password), in a schema of its own
    /// (`depot_bench_ref`, dropped at the end), and returns their figures. `measuredSoFar` sizes
    /// the claim scenarios' prefill from insert rates already known. `progress` gets one line per
    /// scenario as it starts.
    static func run(databaseURL: String, seconds: Int, keys: Set<String>, measuredSoFar: [ReferenceFigure] = [],
                    progress: @Sendable (String) -> Void) async throws -> [ReferenceFigure] {
        let seconds = max(seconds, 1)
        let pgbench = try locatePgbench()
        let environment = try pgbenchEnvironment(databaseURL)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("depot-bench-ref-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }

        let connection = try await Connection.connect(ConnectionConfiguration(databaseURL))
        defer { connection.close() }
        do {
            try await connection.executeUnsafeScript(schemaSQL)
            var figures: [ReferenceFigure] = []
            for scenario in scenarios where keys.contains(scenario.key) {
                try Task.checkCancellation()
                progress("bare SQL \(scenario.key): \(scenario.description), \(seconds) s")
                let bench = Pgbench(executable: pgbench, environment: environment, folder: folder, seconds: seconds)
                figures.append(try await measure(scenario, bench: bench, connection: connection, measuredSoFar: measuredSoFar + figures))
            }
            try await connection.executeUnsafeScript("DROP SCHEMA \(schema) CASCADE")
            return figures
        } catch {
            try? await connection.executeUnsafeScript("DROP SCHEMA IF EXISTS \(schema) CASCADE")
            throw error
        }
    }

    // MARK: - Scenarios

    fileprivate struct Scenario: Sendable {
        enum Kind: Sendable { case insert, claimDelete, claimAck }
        let kind: Kind
        let rows: Int     // messages per pgbench transaction (per script run)
        let clients: Int

        var key: String {
            let name = switch kind { case .insert: "insert"; case .claimDelete: "claim-delete"; case .claimAck: "claim-ack" }
            return "\(name)-\(rows)/clients-\(clients)"
        }

        var description: String {
            let who = clients == 1 ? "1 client" : "\(clients) clients"
            switch kind {
            case .insert where rows == 1: return "single-row INSERT, one per transaction, \(who)"
            case .insert: return "INSERT … SELECT of \(rows) rows per transaction, \(who)"
            case .claimDelete: return "DELETE of the next \(rows) \(rows == 1 ? "row" : "rows") (SKIP LOCKED) per transaction, \(who)"
            case .claimAck: return "lease \(rows) rows (UPDATE, SKIP LOCKED), then ack them (DELETE): two transactions, \(who)"
            }
        }

        var script: String {
            switch kind {
            case .insert where rows == 1:
                return "INSERT INTO \(table) (store, payload, headers, content_type) VALUES (\(rowValues));\n"
            case .insert:
                return "INSERT INTO \(table) (store, payload, headers, content_type) SELECT \(rowValues) FROM generate_series(1, \(rows));\n"
            case .claimDelete:
                // Depot's claim order; the CTE bounds what is locked to what is taken.
                return """
                    WITH next AS (
                        SELECT id FROM \(table) WHERE store = 's'
                        ORDER BY priority DESC, seq LIMIT \(rows) FOR UPDATE SKIP LOCKED)
                    DELETE FROM \(table) WHERE id IN (SELECT id FROM next);

                    """
            case .claimAck:
                // Depot's claim (less the group rule) and ack: the ids come back through \gset,
                // and the ack deletes only what this client leased, as PostgresStore.ack does.
                return """
                    WITH next AS (
                        SELECT id FROM \(table)
                        WHERE store = 's' AND available_at <= now() AND (locked_until IS NULL OR locked_until <= now())
                        ORDER BY priority DESC, seq LIMIT \(rows) FOR UPDATE SKIP LOCKED),
                    claimed AS (
                        UPDATE \(table) m SET locked_by = 'bench-:client_id', locked_until = now() + interval '30 seconds',
                            attempts = m.attempts + 1
                        FROM next WHERE m.id = next.id RETURNING m.id)
                    SELECT coalesce(array_agg(id), '{}')::text AS ids FROM claimed
                    \\gset
                    DELETE FROM \(table) WHERE id = ANY(':ids'::uuid[]) AND locked_by = 'bench-:client_id';

                    """
            }
        }
    }

    private static let scenarios: [Scenario] = [
        Scenario(kind: .insert, rows: 1, clients: 1),
        Scenario(kind: .insert, rows: 1, clients: 8),
        Scenario(kind: .insert, rows: 100, clients: 1),
        Scenario(kind: .insert, rows: 1000, clients: 1),
        Scenario(kind: .claimDelete, rows: 1, clients: 1),
        Scenario(kind: .claimDelete, rows: 1, clients: 8),
        Scenario(kind: .claimDelete, rows: 100, clients: 1),
        Scenario(kind: .claimDelete, rows: 100, clients: 8),
        Scenario(kind: .claimAck, rows: 100, clients: 8),
    ]

    /// A message as a producer stores it: ~100-byte payload, one header.
    private static let rowValues = "'s', '\(String(repeating: "x", count: 100))'::bytea, '{\"source\":\"bench\"}', 'application/octet-stream'"

    /// A simplified depot.messages (migrations/0001_schema.sql): same columns and indexes,
    /// without the store foreign key and the headers check.
    private static let schemaSQL = """
        DROP SCHEMA IF EXISTS \(schema) CASCADE;
        CREATE SCHEMA \(schema);
        CREATE TABLE \(table) (
            id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            seq             bigint GENERATED ALWAYS AS IDENTITY,
            store           text NOT NULL,
            payload         bytea NOT NULL DEFAULT '',
            headers         jsonb NOT NULL DEFAULT '{}',
            content_type    text,
            priority        integer NOT NULL DEFAULT 0,
            created_at      timestamptz NOT NULL DEFAULT now(),
            available_at    timestamptz NOT NULL DEFAULT now(),
            attempts        integer NOT NULL DEFAULT 0,
            group_key       text,
            idempotency_key text,
            locked_by       text,
            locked_until    timestamptz,
            last_error      text
        );
        CREATE INDEX messages_claim_order ON \(table) (store, priority DESC, seq);
        CREATE INDEX messages_group_order ON \(table) (store, group_key, seq) WHERE group_key IS NOT NULL;
        """

    // MARK: - Measuring

    private static func measure(_ scenario: Scenario, bench: Pgbench, connection: Connection,
                                measuredSoFar: [ReferenceFigure]) async throws -> ReferenceFigure {
        try await connection.executeUnsafeScript("TRUNCATE \(table) RESTART IDENTITY")
        if scenario.kind != .insert {
            let rows = prefillRows(for: scenario, seconds: bench.seconds, measuredSoFar: measuredSoFar)
            try await connection.executeUnsafeScript(
                "INSERT INTO \(table) (store, payload, headers, content_type) SELECT \(rowValues) FROM generate_series(1, \(rows))")
            try await connection.executeUnsafeScript("VACUUM (ANALYZE) \(table)")
        }
        // Start each run without the previous scenario's WAL to flush; needs a privileged role.
        try? await connection.executeUnsafeScript("CHECKPOINT")

        let before = try await count(connection)
        let result = try await bench.run(scenario)

        // pgbench counts a transaction that found nothing to claim like any other.
        if scenario.kind != .insert {
            let after = try await count(connection)
            if after.unleased == 0 {
                throw CLIFailure.unavailable(
                    "bare SQL \(scenario.key): the prefilled table ran dry before the \(bench.seconds) s run ended, so its figure is meaningless; "
                        + "this machine claims faster than the prefill allows for (raise the rate in BareSQLReference.prefillRows)")
            }
            let expected = result.transactions * scenario.rows
            let removed = before.all - after.all
            if Double(removed) < 0.99 * Double(expected) {
                throw CLIFailure.unavailable(
                    "bare SQL \(scenario.key): pgbench ran \(result.transactions) transactions of \(scenario.rows) but only \(removed) rows left the table; "
                        + "its tps would overstate messages/s")
            }
        }
        return ReferenceFigure(key: scenario.key, description: scenario.description, messagesPerSecond: result.tps * Double(scenario.rows))
    }

    /// Rows in the table, and those not leased.
    private static func count(_ connection: Connection) async throws -> (all: Int, unleased: Int) {
        let row = try await connection.query(
            "SELECT count(*) AS all_rows, count(*) FILTER (WHERE locked_by IS NULL) AS unleased FROM \(unsafeRaw: table)").first
        return (try row?.decode("all_rows", as: Int.self) ?? 0, try row?.decode("unleased", as: Int.self) ?? 0)
    }

    /// Enough rows that a claim run never empties the table: 1.5 × the run at a generous rate, the
    /// higher of a fixed floor and twice the insert rate just measured (claims are slower than inserts).
    private static func prefillRows(for scenario: Scenario, seconds: Int, measuredSoFar: [ReferenceFigure]) -> Int {
        func measured(_ key: String) -> Double { measuredSoFar.first { $0.key == key }?.messagesPerSecond ?? 0 }
        let rate = scenario.rows == 1
            ? max(15_000, 2 * measured("insert-1/clients-8"))
            : max(60_000, 2 * measured("insert-100/clients-1"))
        return Int(rate * Double(seconds) * 1.5)
    }

    // MARK: - pgbench

    struct Pgbench: Sendable {
        let executable: String
        let environment: [String: String]
        let folder: URL
        let seconds: Int

        /// Runs `scenario`'s script; returns pgbench's tps (without initial connection time) and
        /// how many transactions (script runs) it completed.
        fileprivate func run(_ scenario: Scenario) async throws -> (tps: Double, transactions: Int) {
            try await run(script: scenario.script, key: scenario.key, clients: scenario.clients, length: ["-T", "\(seconds)"])
        }

        /// Runs `script` (pgbench's script language) on `clients` connections for `length`
        /// (`-T seconds` or `-t transactions per client`); `key` names it in files and errors.
        func run(script text: String, key: String, clients: Int, length: [String]) async throws -> (tps: Double, transactions: Int) {
            let script = folder.appendingPathComponent(key.replacingOccurrences(of: "/", with: "_") + ".sql")
            try text.write(to: script, atomically: true, encoding: .utf8)
            let threads = min(clients, 2)
            let arguments = ["--no-vacuum", "-f", script.path, "-c", "\(clients)", "-j", "\(threads)"] + length
            let child = try ChildProcess(executable, arguments, environment: environment)
            defer { child.cleanUp() }
            let status = await withTaskCancellationHandler {
                await child.wait()
            } onCancel: {
                child.signal(SIGKILL)
            }
            try Task.checkCancellation()
            let output = child.stdout
            guard status == 0 else {
                throw CLIFailure.unavailable(
                    "bare SQL \(key): pgbench failed (exit status \(status)):\n\(Self.lastLines(child.stderr + output))")
            }
            guard let tps = Self.tps(in: output), let transactions = Self.transactions(in: output) else {
                throw CLIFailure.unavailable(
                    "bare SQL \(key): no \"tps = … (without initial connection time)\" or \"number of transactions actually processed\" "
                        + "line in pgbench's output:\n\(Self.lastLines(output))")
            }
            return (tps, transactions)
        }

        /// `number of transactions actually processed: 1666` (`1666/2000` with -t).
        static func transactions(in output: String) -> Int? {
            let prefix = "number of transactions actually processed: "
            guard let line = output.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix(prefix) }) else { return nil }
            return Int(line.dropFirst(prefix.count).prefix { $0.isNumber })
        }

        /// PG15 prints `tps = 1234.567890 (without initial connection time)`.
        static func tps(in output: String) -> Double? {
            for line in output.split(whereSeparator: \.isNewline) where line.hasPrefix("tps = ") && line.contains("without initial connection time") {
                if let number = line.dropFirst("tps = ".count).split(separator: " ").first, let value = Double(number) { return value }
            }
            return nil
        }

        static func lastLines(_ text: String, count: Int = 8) -> String {
            text.split(whereSeparator: \.isNewline).suffix(count).map { "  " + $0 }.joined(separator: "\n")
        }
    }

    /// PG_BINDIR first (an explicit choice wins), then PostgreSQL 15's Debian folder, the other
    /// versions' folders, and PATH.
    static func locatePgbench(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        var folders: [String] = []
        if let bindir = environment["PG_BINDIR"], !bindir.isEmpty { folders.append(bindir) }
        folders.append("/usr/lib/postgresql/15/bin")
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        folders += versions.sorted { (Int($0) ?? 0) > (Int($1) ?? 0) }.map { "/usr/lib/postgresql/\($0)/bin" }
        folders += (environment["PATH"] ?? "").split(separator: ":").map(String.init)
        var seen = Set<String>()
        folders = folders.filter { seen.insert($0).inserted }
        for folder in folders {
            let path = (folder as NSString).appendingPathComponent("pgbench")
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw CLIFailure.unavailable(
            "pgbench not found (looked in PG_BINDIR, /usr/lib/postgresql/*/bin and PATH: \(folders.joined(separator: ", "))); "
                + "install it (apt-get install postgresql-contrib, or postgresql-client on newer Debian and Ubuntu) or set PG_BINDIR to the folder that holds it")
    }

    // MARK: - Connection settings

    /// libpq's environment variables for `connectionString` (a URL or `key=value` pairs), so
    /// pgbench connects where Depot does without the password on its command line.
    static func pgbenchEnvironment(_ connectionString: String) throws -> [String: String] {
        var options: [String: String] = [:]
        let trimmed = connectionString.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("postgres://") || trimmed.hasPrefix("postgresql://") {
            guard let url = URLComponents(string: trimmed) else { throw malformed }
            if let host = url.percentEncodedHost?.removingPercentEncoding, !host.isEmpty {
                options["host"] = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
            }
            if let port = url.port { options["port"] = String(port) }
            if let user = url.user, !user.isEmpty { options["user"] = user }
            if let password = url.password, !password.isEmpty { options["password"] = password }
            let database = String(url.path.drop { $0 == "/" })
            if !database.isEmpty { options["dbname"] = database }
            for item in url.queryItems ?? [] { if let value = item.value { options[item.name] = value } }
        } else if !trimmed.isEmpty {
            options = try conninfoPairs(trimmed)
        }
        var environment: [String: String] = ["PGAPPNAME": "depot-bench-ref"]
        for (keyword, value) in options {
            guard let variable = libpqVariables[keyword] else {
                throw CLIFailure.data("the database URL sets \"\(keyword)\", which the pgbench reference cannot pass on; leave it out")
            }
            environment[variable] = value
        }
        return environment
    }

    private static var malformed: CLIFailure {
        CLIFailure.data("the database URL is malformed; use postgres://user:password@host:port/database")
    }

    /// `key=value key='quoted \' value'` pairs, as libpq reads them.
    private static func conninfoPairs(_ text: String) throws -> [String: String] {
        var pairs: [String: String] = [:]
        var rest = Substring(text)
        while true {
            rest = rest.drop { $0.isWhitespace }
            if rest.isEmpty { return pairs }
            guard let equals = rest.firstIndex(of: "=") else { throw malformed }
            let key = rest[..<equals].trimmingCharacters(in: .whitespaces)
            rest = rest[rest.index(after: equals)...].drop { $0.isWhitespace }
            var value = ""
            if rest.first == "'" {
                rest = rest.dropFirst()
                var closed = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if character == "\\", let next = rest.first { value.append(next); rest = rest.dropFirst() }
                    else if character == "'" { closed = true; break }
                    else { value.append(character) }
                }
                guard closed else { throw malformed }
            } else {
                while let character = rest.first, !character.isWhitespace {
                    rest = rest.dropFirst()
                    if character == "\\", let next = rest.first { value.append(next); rest = rest.dropFirst() } else { value.append(character) }
                }
            }
            pairs[key] = value
        }
    }

    /// Connection keywords and the environment variables libpq reads them from.
    private static let libpqVariables: [String: String] = [
        "host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "dbname": "PGDATABASE", "user": "PGUSER",
        "password": "PGPASSWORD", "passfile": "PGPASSFILE", "channel_binding": "PGCHANNELBINDING", "service": "PGSERVICE",
        "options": "PGOPTIONS", "application_name": "PGAPPNAME", "sslmode": "PGSSLMODE", "requiressl": "PGREQUIRESSL",
        "sslcompression": "PGSSLCOMPRESSION", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY", "sslrootcert": "PGSSLROOTCERT",
        "sslcrl": "PGSSLCRL", "sslcrldir": "PGSSLCRLDIR", "sslsni": "PGSSLSNI", "requirepeer": "PGREQUIREPEER",
        "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION", "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
        "gssencmode": "PGGSSENCMODE", "krbsrvname": "PGKRBSRVNAME", "gsslib": "PGGSSLIB",
        "connect_timeout": "PGCONNECT_TIMEOUT", "client_encoding": "PGCLIENTENCODING",
        "target_session_attrs": "PGTARGETSESSIONATTRS",
    ]
}
