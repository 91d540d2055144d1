import Depot
import DepotProcess
import Foundation
import Postgres

/// What every scenario gets: the database, this binary (to start nodes and back ends as their
/// own processes, so their CPU and memory are theirs), the run's length and the reference.
struct BenchContext: Sendable {
    let databaseURL: String
    let pool: ConnectionPool
    /// This `depot` binary.
    let binary: String
    let quick: Bool
    /// The bare-SQL figures; a scenario measures the ones it is judged against just before it runs.
    let references: ReferenceBook
    /// The server's CPU, when it runs on this machine.
    let serverCPU: ServerCPU?

    /// `full` seconds, or `quick` with `--quick`.
    func seconds(full: Int, quick short: Int) -> Int { quick ? short : full }

    /// A line on standard error, so `--json` output stays clean.
    func progress(_ line: String) {
        FileHandle.standardError.write(Data("bench: \(line)\n".utf8))
    }

    /// Runs fixed SQL the benchmark wrote itself (never user input).
    func script(_ text: String) async throws {
        try await pool.withConnection { try await $0.executeUnsafeScript(text) }
    }

    /// Removes what earlier scenarios left (processors first, so nodes stop running them) and
    /// declares `stores`.
    func reset(stores: [String]) async throws {
        try await pool.query("DELETE FROM depot.processors")
        try await pool.query("DELETE FROM depot.endpoints")
        // TRUNCATE rather than DELETE: each scenario starts from an empty table, not from the last one's dead rows.
        try await script("TRUNCATE depot.messages, depot.idempotency_keys, depot.dead_letters")
        for store in stores {
            try await pool.query("INSERT INTO depot.stores (name) VALUES (\(store)) ON CONFLICT (name) DO NOTHING")
        }
    }

    /// Messages waiting in `store`, exactly.
    func depth(_ store: String) async throws -> Int {
        try await pool.query("SELECT count(*) FROM depot.messages WHERE store = \(store)").first?.decode(at: 0) ?? 0
    }

    /// Fills `store` with `count` messages of 100 bytes, 1,000 per round trip (not measured).
    /// No VACUUM, ANALYZE or CHECKPOINT afterwards: the store is drained as a user's would be,
    /// with whatever statistics and unvacuumed pages the fill left (autovacuum may start
    /// during the drain, as it would for them).
    func fill(_ store: String, count: Int) async throws {
        let target = PostgresStore(name: store, pool: pool)
        let payload = Data(repeating: UInt8(ascii: "x"), count: 100)
        var left = count
        while left > 0 {
            let batch = min(1000, left)
            _ = try await target.store((0..<batch).map { _ in OutgoingMessage(payload: payload, contentType: "text/plain") })
            left -= batch
        }
    }

    /// Waits until `store` is empty; returns the seconds it took, or throws after `timeout`.
    func drained(_ store: String, from started: ContinuousClock.Instant, timeout: Duration) async throws -> Double {
        // The first row in claim order, not count(*): a count is a scan of the whole table, and
        // polling it every 20 ms took half a core from the drain it measured. The ORDER BY with
        // sorting off (as the claim has it) keeps the planner on the claim index whatever the
        // table's statistics, and one scan marks dead entries for the next.
        while try await pool.withTransaction({ connection in
            try await connection.execute("SET LOCAL enable_sort = off")
            return try await connection.query("""
                SELECT 1 FROM depot.messages WHERE store = \(store) ORDER BY priority DESC, seq LIMIT 1
                """).first != nil
        }) {
            guard ContinuousClock.now - started < timeout else {
                throw BenchFailure("store \(store) still holds \(try await depth(store)) messages after \(timeout); is the node running? see its log above")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return (ContinuousClock.now - started).benchSeconds
    }

    /// A context on a new, migrated database of its own (the same server), for a scenario that
    /// starts from a fresh install; `dropDatabase()` removes it.
    func freshDatabase() async throws -> BenchContext {
        let name = "bench_fresh_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased())"
        guard var components = URLComponents(string: databaseURL) else { throw BenchFailure("DEPOT_DATABASE_URL is not a URL") }
        do {
            try await script("CREATE DATABASE \(quoteIdentifier(name))")
        } catch {
            throw BenchFailure("a fresh database is needed and CREATE DATABASE failed (\(error)); the role needs CREATEDB")
        }
        components.path = "/" + name
        let url = components.string!
        let fresh = ConnectionPool(ConnectionConfiguration(url), maximumConnections: 4)
        _ = try await fresh.withConnection { try await Migrator().migrate(on: $0) }
        return BenchContext(databaseURL: url, pool: fresh, binary: binary, quick: quick, references: references, serverCPU: serverCPU)
    }

    /// Closes this context's pool and drops its database (one made by `freshDatabase()`), on `server`.
    func dropDatabase(on server: BenchContext) async throws {
        await pool.close()
        guard let name = URLComponents(string: databaseURL)?.path.dropFirst(), name.hasPrefix("bench_fresh_") else { return }
        try await server.script("DROP DATABASE IF EXISTS \(quoteIdentifier(String(name))) WITH (FORCE)")
    }

    /// Starts `depot node --name NAME` with `arguments` and waits for its row in depot.nodes.
    func startNode(_ name: String, _ arguments: [String] = []) async throws -> BenchProcess {
        let node = try BenchProcess(binary, ["node", "--name", name] + arguments, environment: ["DEPOT_DATABASE_URL": databaseURL])
        let started = ContinuousClock.now
        while try await pool.query("SELECT 1 FROM depot.nodes WHERE name = \(name)").first == nil {
            guard node.isRunning, ContinuousClock.now - started < .seconds(30) else {
                await node.stop()
                throw BenchFailure("node \(name) did not start: \(node.errorTail)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return node
    }

    /// Starts `depot echo-server` on a free port; returns it and its port.
    func startEcho() async throws -> (BenchProcess, Int) {
        let echo = try BenchProcess(binary, ["echo-server", "--port", "0"])
        let started = ContinuousClock.now
        while ContinuousClock.now - started < .seconds(10) {
            if let line = echo.output.split(separator: "\n").first(where: { $0.contains("listening on") }),
               let port = line.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) {
                return (echo, port)
            }
            guard echo.isRunning else { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        await echo.stop()
        throw BenchFailure("echo-server did not start: \(echo.errorTail)")
    }
}

/// A scenario that could not run, and why.
struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension Duration {
    /// As fractional seconds.
    var benchSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
