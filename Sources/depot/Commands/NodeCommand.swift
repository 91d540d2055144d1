import Depot
import DepotHTTP
import Foundation
import Postgres

let nodeCommand = Command(
    name: "node",
    summary: "Run a worker node: the active processors it may run, and HTTP ingress with --http, until SIGTERM or SIGINT.",
    options: [
        OptionSpec(name: "name", value: "NAME", help: "the node's name, unique in the cluster; pinned_servers refers to it (required)"),
        OptionSpec(name: "http", value: "HOST:PORT", help: "serve producers, consumers, /healthz, /metrics and the status page (GET /) here (e.g. 0.0.0.0:8080; :8080 means all addresses)"),
        OptionSpec(name: "journal", value: "DIR", help: "the folder of this node's journal stores (default $DEPOT_JOURNAL_DIR, else .depot/journal)"),
        OptionSpec(name: "http-tokens", value: "FILE", help: "bearer tokens limited to named stores, one a line: TOKEN store1,store2 (with --http)"),
        OptionSpec(name: "max-body", value: "BYTES", help: "the largest request body --http accepts (default 10485760, 10 MiB)"),
        OptionSpec(name: "primary-timeout", value: "DURATION", help: "a store write slower than this goes to the store's failover store (default 5s)"),
        OptionSpec(name: "lease", value: "DURATION", help: "how long a claim holds a message before another node may take it (default 30s)"),
        OptionSpec(name: "heartbeat", value: "DURATION", help: "how often the node marks itself alive in depot.nodes (default 5s)"),
        OptionSpec(name: "reconcile", value: "DURATION", help: "how often it re-reads processor rows without a notification (default 10s)"),
        OptionSpec(name: "connections", value: "N", help: "database connections the node may open (default 10)"),
        OptionSpec(name: "claim-concurrency", value: "N", help: "claim statements of one processor run at once on this node (default 3; about the database's cores)"),
        OptionSpec(name: "shutdown-timeout", value: "DURATION", help: "how long SIGTERM waits for requests to be answered and deliveries to finish before the node exits anyway (default 60s)"),
        OptionSpec(name: "vacuum-dead-rows", value: "N", help: "VACUUM depot.messages once this many acked rows are dead (default 10000; 0 leaves it to autovacuum)"),
    ],
    notes: """
        The node follows INSERT, UPDATE and DELETE of depot.processors and depot.endpoints rows
        without a restart. On SIGTERM or SIGINT it stops taking requests and claiming, delivers or
        releases what it holds, removes its depot.nodes row and exits 0.
        With --http the node starts even while the database is down: producers get 202 for stores
        with guaranteed delivery (held in their failover store) and 503 for the others, and the
        node joins the cluster once the database answers. Set DEPOT_HTTP_TOKEN to require
        Authorization: Bearer TOKEN on every route but /healthz (a browser opening the status page
        is asked for it: any user name, the token as password); --http-tokens FILE adds tokens
        that may only POST into the stores named after them (another store, /metrics or the
        status page: 403).
        Behind PgBouncer in transaction mode, set DEPOT_DATABASE_POOL_MODE=transaction and
        DEPOT_LISTEN_DATABASE_URL to a direct connection to PostgreSQL, where the node LISTENs.
        Example: depot node --name node-a --http 0.0.0.0:8080 --journal /var/lib/depot/journal
        """
) { arguments in
    guard let name = arguments.value("name") else {
        throw CLIFailure.usage("--name is required: depot node --name node-a")
    }
    if let problem = NameCharacters.problem(in: name) {
        throw CLIFailure.usage("--name \"\(NameCharacters.shown(name))\" \(problem)")
    }
    let database = ConnectionConfiguration.fromEnvironment()
    // Before anything starts: behind a transaction pool, the node needs a direct connection to LISTEN on.
    _ = try database.sessionConfiguration()
    var configuration = Node.Configuration(name: name)
    configuration.lease = try arguments.duration("lease") ?? configuration.lease
    configuration.heartbeatInterval = try arguments.duration("heartbeat") ?? configuration.heartbeatInterval
    configuration.reconcileInterval = try arguments.duration("reconcile") ?? configuration.reconcileInterval
    configuration.claimConcurrency = try arguments.integer("claim-concurrency", in: 1...1000) ?? configuration.claimConcurrency
    configuration.shutdownTimeout = try arguments.duration("shutdown-timeout") ?? configuration.shutdownTimeout
    if let rows = try arguments.integer("vacuum-dead-rows", in: 0...1_000_000_000) {
        configuration.vacuumDeadRows = rows == 0 ? nil : rows
    }
    if let problem = configuration.problem { throw CLIFailure.usage(problem) }
    let listen = try arguments.value("http").map(parseListenAddress)
    let token = listen == nil ? nil : try httpToken(ProcessInfo.processInfo.environment["DEPOT_HTTP_TOKEN"])
    var scopedTokens: [IngressTokens.Scoped] = []
    if let file = arguments.value("http-tokens") {
        guard listen != nil else { throw CLIFailure.usage("--http-tokens needs --http: the tokens are for HTTP ingress") }
        scopedTokens = try httpScopedTokens(file: file, full: token)
    }
    configuration.waitForDatabase = listen != nil
    let maximumBody = try arguments.integer("max-body", in: 0...(1 << 30)) ?? HTTPLimits().bodyBytes
    let primaryTimeout = try arguments.duration("primary-timeout") ?? .seconds(5)
    guard primaryTimeout > .zero else { throw CLIFailure.usage("--primary-timeout must be longer than 0") }
    let connections = try arguments.integer("connections", in: 2...1000) ?? 10
    let journalFolder = arguments.value("journal").map { URL(fileURLWithPath: $0) } ?? StoreDirectory.defaultJournalFolder
    if arguments.value("journal") != nil || listen != nil { try checkJournalFolder(journalFolder) }

    let pool = ConnectionPool(database, maximumConnections: connections)
    let stores = StoreDirectory(pool: pool, journalFolder: journalFolder)
    let metrics = NodeMetrics()
    let node = Node(configuration, pool: pool, stores: stores, metrics: metrics)
    var ingress: [any Service] = []
    if let listen {
        let producer = Producer(pool: pool, stores: stores, configuration: Producer.Configuration(
            primaryTimeout: primaryTimeout, routesFile: journalFolder.appendingPathComponent("stores.json")), metrics: metrics)
        Task { try? await producer.refreshRoutes() }
        let service = IngressService(.init(node: name, token: token, scopedTokens: scopedTokens), producer: producer, pool: pool, metrics: metrics,
                                     arrivals: node.arrivals)
        let server = service.server(host: listen.host, port: listen.port, limits: HTTPLimits(bodyBytes: maximumBody))
        do { try server.start() } catch {
            throw CLIFailure.unavailable("cannot listen on \(listen.host):\(listen.port): \(error); is the port taken? pick another with --http")
        }
        FileHandle.standardError.write(Data("depot node \(name): HTTP on \(listen.host):\(server.port)\n".utf8))
        ingress = [HTTPIngressService(server: server, arrivals: node.arrivals)]
    }
    // The node's services stop in reverse order: the HTTP ingress first (it stops accepting and
    // answers every request already read, so a committed message gets its 202), then the
    // processors (finish or release what they hold), the listener and maintenance, and the
    // heartbeat last, which deregisters.
    let signals = onTerminationSignals { _ in node.stop() }
    defer { signals.forEach { $0.cancel() } }
    do {
        try await node.run(alongside: ingress)
        await pool.close()
    } catch {
        await pool.close()
        throw error
    }
}

/// `HOST:PORT`, `:PORT` (every address) or `[IPv6]:PORT`.
func parseListenAddress(_ text: String) throws -> (host: String, port: Int) {
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
        throw CLIFailure.usage("--http must be HOST:PORT such as 127.0.0.1:8080 or :8080, got '\(text)'")
    }
    var host = String(text[..<colon])
    if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    return (host.isEmpty ? "0.0.0.0" : host, port)
}

/// The bearer token from DEPOT_HTTP_TOKEN; nil when unset. An empty value turned authentication
/// off without a word, and one with spaces around it could never match: both are refused.
func httpToken(_ value: String?) throws -> String? {
    guard let value else { return nil }
    guard !value.isEmpty else {
        throw CLIFailure.configuration("DEPOT_HTTP_TOKEN is set but empty, which would leave --http open to anyone; set a token or unset the variable")
    }
    guard value.trimmingCharacters(in: .whitespacesAndNewlines) == value else {
        throw CLIFailure.configuration("DEPOT_HTTP_TOKEN has spaces or line breaks around it, which no Authorization header can match; remove them")
    }
    if let problem = HTTPHeaders.problem(name: "Authorization", value: value) {
        throw CLIFailure.configuration("DEPOT_HTTP_TOKEN cannot be sent in a header: \(problem)")
    }
    return value
}

/// The tokens of `--http-tokens FILE`. A file that cannot be read or a line that cannot be used
/// stops the node at start, in one line naming the file and the line (never the token).
func httpScopedTokens(file: String, full: String?) throws -> [IngressTokens.Scoped] {
    let text: String
    do {
        text = try String(contentsOfFile: file, encoding: .utf8)
    } catch {
        let reason = access(file, R_OK) == 0 ? "it is not UTF-8 text" : String(cString: strerror(errno))
        throw CLIFailure.configuration("--http-tokens \(Quoting.shell(file)) cannot be read: \(reason)")
    }
    do {
        let tokens = try IngressTokens.scopedTokens(fromFile: text, full: full)
        guard !tokens.isEmpty else {
            throw CLIFailure.configuration("--http-tokens \(Quoting.shell(file)) holds no token; write one a line: TOKEN store1,store2")
        }
        return tokens
    } catch let problem as IngressTokens.FileProblem {
        throw CLIFailure.configuration("--http-tokens \(Quoting.shell(file)) \(problem)")
    }
}

/// Refuses to start with a journal folder this node cannot write: it keeps its journal stores
/// and, with --http, the store routes there. Before, the node started with a multi-line warning
/// and then answered 500 for every journal store (and for failover while the database was down).
func checkJournalFolder(_ folder: URL) throws {
    var reason: String?
    do {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        // The system's own words (Foundation's are "the operation could not be completed").
        let probe = folder.appendingPathComponent(".depot-write-check-\(getpid())").path
        let fd = open(probe, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
        if fd < 0 { reason = String(cString: strerror(errno)) } else { close(fd); unlink(probe) }
    } catch {
        reason = mkdir(folder.path, 0o755) == 0 ? nil : String(cString: strerror(errno))
        if reason == nil { rmdir(folder.path); reason = "\(error)" }
    }
    if let reason {
        throw CLIFailure.configuration("the journal folder \(Quoting.shell(folder.path)) cannot be written: \(Quoting.oneLine(reason)); "
            + "make it writable by this user or pick another with --journal or DEPOT_JOURNAL_DIR")
    }
}
