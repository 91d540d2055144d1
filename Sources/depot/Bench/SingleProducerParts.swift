import Depot
import Foundation
import Postgres

/// Diagnostic, not part of a default run (`--only enqueue-parts`): where one producer storing one
/// message at a time spends what the bare INSERT does not. Alternates, round by round, pgbench's
/// INSERT into a bare copy of depot.messages (no check, no trigger), pgbench running Depot's own
/// INSERT, the same two statements from a Swift `Connection`, then `PostgresStore` and
/// `Producer`; prints each one's median rate and its median ratio to the first. The steps
/// between neighbours are the server's share (check and trigger), the client's (one statement
/// from Swift), and the library's.
enum SingleProducerParts {
    static let store = "bench-enqueue-parts"

    static func run(_ context: BenchContext) async throws -> [BenchFigure] {
        try await context.reset(stores: [store])
        let seconds = context.quick ? 1 : 2
        let rounds = context.quick ? 3 : 5
        let payload = Data(repeating: UInt8(ascii: "x"), count: 100)
        let hex = String(repeating: "78", count: 100)
        let connection = try await Connection.connect(ConnectionConfiguration(context.databaseURL))
        defer { connection.close() }
        try await connection.executeUnsafeScript("""
            DROP TABLE IF EXISTS public.parts_bare;
            CREATE TABLE public.parts_bare (LIKE depot.messages INCLUDING DEFAULTS);
            ALTER TABLE public.parts_bare ADD PRIMARY KEY (id);
            CREATE INDEX ON public.parts_bare (store, priority DESC, seq);
            """)
        let pgbench = try BareSQLReference.locatePgbench()
        let environment = try BareSQLReference.pgbenchEnvironment(context.databaseURL)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("depot-parts-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let bench = BareSQLReference.Pgbench(executable: pgbench, environment: environment, folder: folder, seconds: seconds)
        let values = "(gen_random_uuid(), '\(store)', '\\x\(hex)'::bytea, '{\"source\":\"bench\"}', 'application/octet-stream', 0, now())"
        let producer = Producer(pool: context.pool, stores: StoreDirectory(pool: context.pool))
        let postgresStore = PostgresStore(name: store, pool: context.pool)

        typealias Variant = (name: String, run: () async throws -> Double)
        let variants: [Variant] = [
            ("pgbench bare table", {
                try await bench.run(script: "INSERT INTO public.parts_bare (id, seq, store, payload, headers, content_type, priority, available_at) VALUES (gen_random_uuid(), 1, 'x', '\\x\(hex)'::bytea, '{\"source\":\"bench\"}', 'application/octet-stream', 0, now());\n",
                                    key: "parts-bare", clients: 1, length: ["-T", "\(seconds)"]).tps
            }),
            ("pgbench depot.messages", {
                try await bench.run(script: "INSERT INTO depot.messages (id, store, payload, headers, content_type, priority, available_at) VALUES \(values);\n",
                                    key: "parts-depot", clients: 1, length: ["-T", "\(seconds)"]).tps
            }),
            ("Connection bare table", {
                try await EnqueueBench.loop(seconds: seconds, workers: 1) {
                    try await connection.execute("""
                        INSERT INTO public.parts_bare (id, seq, store, payload, headers, content_type, priority, available_at)
                        VALUES (\(UUID()), 1, 'x', \(payload), '{"source":"bench"}'::jsonb, 'application/octet-stream', 0, now())
                        """)
                }
            }),
            ("Connection depot.messages", {
                try await EnqueueBench.loop(seconds: seconds, workers: 1) {
                    try await connection.execute("""
                        INSERT INTO depot.messages (id, store, payload, headers, content_type, priority, available_at)
                        VALUES (\(UUID()), \(store), \(payload), '{"source":"bench"}'::jsonb, 'application/octet-stream', 0, now())
                        """)
                }
            }),
            ("PostgresStore.store", {
                try await EnqueueBench.loop(seconds: seconds, workers: 1) { _ = try await postgresStore.store(OutgoingMessage(payload: payload)); return 1 }
            }),
            ("Producer.store", {
                try await EnqueueBench.loop(seconds: seconds, workers: 1) { _ = try await producer.store(OutgoingMessage(payload: payload), in: store); return 1 }
            }),
        ]
        var rates = Array(repeating: [Double](), count: variants.count)
        for round in 1...rounds {
            context.progress("enqueue-parts: round \(round) of \(rounds)")
            for (index, variant) in variants.enumerated() { rates[index].append(try await variant.run()) }
        }
        var figures: [BenchFigure] = []
        for (index, variant) in variants.enumerated() {
            let ratios = zip(rates[index], rates[0]).map { $0 / $1 }
            let line = String(format: "%-28@ median %7.0f msg/s, ratio to bare %5.1f%%  (rounds: %@)", variant.name as NSString,
                              AlternatingPairs.median(rates[index]), 100 * AlternatingPairs.median(ratios),
                              rates[index].map { String(Int($0)) }.joined(separator: " ") as NSString)
            FileHandle.standardError.write(Data("enqueue-parts: \(line)\n".utf8))
            figures.append(BenchFigure(scenario: "enqueue-parts", measure: variant.name, value: AlternatingPairs.median(rates[index]), unit: "msg/s"))
        }
        try await connection.executeUnsafeScript("DROP TABLE public.parts_bare")
        return figures
    }
}
