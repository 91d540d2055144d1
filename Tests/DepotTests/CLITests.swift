import Depot
import Foundation
import Postgres
import Testing
import TestSupport

/// Runs the real `depot` binary against a fresh migrated database.
struct DepotCLI {
    let databaseURL: String

    static var binary: URL { depotExecutable }

    static func fresh() async throws -> DepotCLI {
        let configuration = try await TestDatabase.createEmpty()
        let cli = DepotCLI(databaseURL: configuration.connectionString)
        let migrated = try await cli.run("migrate")
        guard migrated.status == 0 else { throw MigrateFailed(output: migrated.stderr) }
        return cli
    }

    struct MigrateFailed: Error { let output: String }

    func run(_ arguments: String..., input: Data? = nil, databaseURL: String? = nil) async throws -> ProcessOutput {
        try await runProcess(Self.binary, arguments, environment: ["DEPOT_DATABASE_URL": databaseURL ?? self.databaseURL], input: input)
    }
}

@Suite("The depot command line")
struct CLITests {
    @Test("migrate, declare, store from flags and standard input, and read the stats back")
    func happyPath() async throws {
        let cli = try await DepotCLI.fresh()
        let again = try await cli.run("migrate")
        #expect(again.status == 0)
        #expect(again.stdout.contains("up to date"))
        #expect(try await cli.run("stores", "add", "orders").status == 0)

        let stored = try await cli.run("store", "orders", "--data", "hello", "--header", "source=cli", "--header", "emoji=🐢",
                                       "--priority", "4", "--group", "g1")
        #expect(stored.status == 0)
        let id = try #require(UUID(uuidString: stored.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        let piped = try await cli.run("store", "orders", "--key", "k-1", "--content-type", "application/json", input: Data(#"{"a":1}"#.utf8))
        let repeated = try await cli.run("store", "orders", "--key", "k-1", input: Data("other".utf8))
        #expect(piped.status == 0 && repeated.status == 0)
        #expect(piped.stdout == repeated.stdout)
        #expect(repeated.stderr.contains("stored before"))
        #expect(try await cli.run("store", "orders", "--delay", "1h", "--data", "later").status == 0)

        let pool = ConnectionPool(ConnectionConfiguration(cli.databaseURL), maximumConnections: 1)
        let messages = try await PostgresStore(name: "orders", pool: pool).peek(limit: 10)
        let first = try #require(messages.first)
        #expect(first.id == id)
        #expect(first.headers == ["source": "cli", "emoji": "🐢"])
        #expect(first.priority == 4 && first.groupKey == "g1")
        #expect(first.contentType == "text/plain; charset=utf-8")
        #expect(messages.contains { $0.payload == Data(#"{"a":1}"#.utf8) && $0.contentType == "application/json" })
        await pool.close()

        let stats = try await cli.run("stats", "--json")
        #expect(stats.status == 0)
        let rows = try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [[String: Any]]
        let orders = try #require(rows?.first { $0["store"] as? String == "orders" })
        #expect(orders["ready"] as? Int == 2)
        #expect(orders["delayed"] as? Int == 1)
        let table = try await cli.run("stats")
        #expect(table.stdout.hasPrefix("STORE"))
        #expect(table.stdout.contains("orders"))
    }

    @Test("bad input: one line naming the problem and the fix, a meaningful exit status, no stack trace")
    func badInput() async throws {
        let cli = try await DepotCLI.fresh()
        #expect(try await cli.run("stores", "add", "orders").status == 0)
        var url = URLComponents(string: cli.databaseURL)!
        url.password = "wrong-password"
        let unreachable = "postgres://depot:secret-pw@127.0.0.1:1/depot"
        let unmigrated = try await TestDatabase.createEmpty(prefix: "u").connectionString
        let cases: [(arguments: [String], database: String?, status: Int32, mentions: String)] = [
            (["stats"], unreachable, 69, "start PostgreSQL"),
            (["stats"], url.string!, 69, "check the user and password"),
            (["stats"], "postgres://depot:secret-pw@[::1/depot", 78, "malformed"),
            (["store", "nowhere", "--data", "x"], nil, 65, "depot stores add"),
            (["store", "orders", "--header", "novalue", "--data", "x"], nil, 64, "KEY=VALUE"),
            (["store", "orders", "--file", "/no/such/file"], nil, 66, "no such file"),
            (["store", "orders", "--delay", "10", "--data", "x"], nil, 64, "with a unit"),
            (["store", "orders", "--priority", "high", "--data", "x"], nil, 64, "whole number"),
            (["store", "orders", "--bogus"], nil, 64, "see depot store --help"),
            (["store"], nil, 64, "missing argument"),
            (["frobnicate"], nil, 64, "depot --help"),
            (["stores", "add", "orders"], nil, 65, "already exists"),
            (["bench", "--only", "drain,nope"], nil, 64, "the scenarios are"),
            (["node", "--name", "n1", "--claim-concurrency", "0"], nil, 64, "--claim-concurrency"),
            (["node", "--name", "n1"], unmigrated, 78, "run depot migrate"),
            // The benchmark wipes messages and processors: never on a database with stores of its own.
            (["bench", "--quick"], nil, 65, "throwaway database"),
        ]
        for testCase in cases {
            let output = try await runProcess(DepotCLI.binary, testCase.arguments,
                                              environment: ["DEPOT_DATABASE_URL": testCase.database ?? cli.databaseURL])
            let label = testCase.arguments.joined(separator: " ")
            #expect(output.status == testCase.status, "depot \(label) exited \(output.status): \(output.stderr)")
            let lines = output.stderr.split(separator: "\n")
            #expect(lines.count == 1, "depot \(label) printed \(lines.count) lines: \(output.stderr)")
            #expect(output.stderr.hasPrefix("depot: "), "depot \(label): \(output.stderr)")
            #expect(output.stderr.contains(testCase.mentions), "depot \(label) should mention '\(testCase.mentions)': \(output.stderr)")
            #expect(!output.stderr.contains("secret-pw") && !output.stderr.contains("wrong-password"))
        }
    }

    @Test("every verb explains its flags with --help")
    func helpEverywhere() async throws {
        let overview = try await runProcess(DepotCLI.binary, ["--help"])
        #expect(overview.status == 0)
        for verb in ["migrate", "store", "stats", "stores", "bench"] {
            #expect(overview.stdout.contains("  \(verb) "))
            let help = try await runProcess(DepotCLI.binary, [verb, "--help"])
            #expect(help.status == 0)
            #expect(help.stdout.contains("Usage: depot \(verb)"))
        }
        let storeHelp = try await runProcess(DepotCLI.binary, ["store", "--help"])
        for flag in ["--header", "--priority", "--delay", "--key", "--content-type", "--group", "--data", "--file"] {
            #expect(storeHelp.stdout.contains(flag), "depot store --help does not explain \(flag)")
        }
    }
}
