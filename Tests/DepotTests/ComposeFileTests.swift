import Depot
import Foundation
import Testing
import TestSupport

/// docker-compose.yml, the Dockerfile and scripts/compose/setup.sql, checked without Docker:
/// the file reads as the YAML it means, names real services, verbs, flags and files, and the
/// setup SQL does what the cluster needs on a real database.
@Suite("The docker-compose cluster")
struct ComposeFileTests {
    static let requiredServices = ["postgres", "migrate", "setup", "node-a", "node-b", "node-c", "echo-1", "echo-2", "echo-3"]
    static let nodes = ["node-a", "node-b", "node-c"]

    @Test("the YAML subset reader reads lists of mappings, flow lists, quotes and comments, and refuses what it does not know")
    func readerSubset() throws {
        let value = try YAMLSubsetReader.parse("""
            # a comment
            top:
              list:
              - plain: value with # a comment
                second: "quoted: # kept"
              - 'it''s'
              flow: ["a, b", 'c', d]   # trailing comment
              empty: []
              nothing:
              port: "8081:8080"
            other: it's plain
            """)
        let top = try #require(value["top"])
        let list = try #require(top["list"]?.items)
        #expect(list.count == 2)
        #expect(list[0]["plain"]?.string == "value with")
        #expect(list[0]["second"]?.string == "quoted: # kept")
        #expect(list[1].string == "it's")
        #expect(top["flow"]?.strings == ["a, b", "c", "d"])
        #expect(top["empty"]?.items?.isEmpty == true)
        if case .null? = top["nothing"] {} else { Issue.record("an empty value should read as null") }
        #expect(top["port"]?.string == "8081:8080")
        #expect(value["other"]?.string == "it's plain")

        for refused in ["a: &x 1\nb: *x", "a:\n  <<: {}", "a: |\n  text", "a: {b: 1}", "a: 1\na: 2", "a:\n\t- b", "a: \"open",
                        "a: 1\n   b: 2", "a: [[1]]"] {
            #expect(throws: YAMLSubsetError.self, "should refuse: \(refused)") { try YAMLSubsetReader.parse(refused) }
        }
    }

    @Test("docker-compose.yml reads as PyYAML reads it, when PyYAML is there")
    func readerAgreesWithPyYAML() async throws {
        let check = try await runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", "import yaml"])
        guard check.status == 0 else { return }   // no PyYAML here: the reader's own tests stand alone
        let script = """
            import json, sys, yaml
            def plain(v):
                if isinstance(v, dict): return {str(k): plain(x) for k, x in v.items()}
                if isinstance(v, list): return [plain(x) for x in v]
                if v is None: return None
                if isinstance(v, bool): return "true" if v else "false"
                return str(v)
            print(json.dumps(plain(yaml.safe_load(open(sys.argv[1])))))
            """
        let python = try await runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", script, Compose.path.path])
        #expect(python.status == 0, "\(python.stderr)")
        func canonical(_ object: Any) throws -> String {
            String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
        }
        let theirs = try canonical(try JSONSerialization.jsonObject(with: Data(python.stdout.utf8)))
        let ours = try canonical(try Compose.load().file.plain)
        #expect(theirs == ours, "the subset reader and PyYAML disagree about docker-compose.yml")
    }

    @Test("postgres runs the server with the sizing scripts/pg gives its own, and never turns durability off")
    func postgresSettings() throws {
        let compose = try Compose.load()
        let command = try #require(compose.service("postgres")?["command"]?.strings)
        #expect(command.first == "postgres")
        #expect(command.contains("shared_buffers=1GB") && command.contains("max_wal_size=4GB"))
        for unsafe in ["fsync=off", "synchronous_commit=off", "full_page_writes=off"] {
            #expect(!command.contains(unsafe), "docker-compose.yml runs PostgreSQL with \(unsafe)")
        }
        let script = try String(contentsOf: packageRoot.appendingPathComponent("scripts/pg"), encoding: .utf8)
        #expect(script.contains("max_wal_size=4GB") && script.contains("-gt 1024 ] && mb=1024"),
                "scripts/pg and docker-compose.yml should size PostgreSQL alike")
    }

    @Test("the services of issue 5 are there, each with an image or a build, and named volumes are declared")
    func servicesExist() throws {
        let compose = try Compose.load()
        let names = compose.services.map(\.name)
        for required in Self.requiredServices { #expect(names.contains(required), "docker-compose.yml has no service \(required)") }
        let topLevel = try #require(compose.file.entries).map(\.key)
        for key in topLevel { #expect(["services", "volumes", "networks"].contains(key) || key.hasPrefix("x-"), "unknown top-level key \(key)") }
        #expect(compose.service("postgres")?["image"]?.string?.hasPrefix("postgres:15") == true)
        let declaredVolumes = compose.file["volumes"]?.entries?.map(\.key) ?? []
        for (name, service) in compose.services {
            #expect(service["image"] != nil || service["build"] != nil, "\(name) has neither image nor build")
            for volume in service["volumes"]?.strings ?? [] {
                let source = String(volume.split(separator: ":")[0])
                if !source.hasPrefix(".") && !source.hasPrefix("/") {
                    #expect(declaredVolumes.contains(source), "\(name) mounts volume \(source), which volumes: does not declare")
                }
            }
        }
        for (name, _) in compose.services {
            for problem in compose.interpolationProblems(name) { Issue.record("\(name): \(problem)") }
        }
    }

    @Test("every depends_on names a defined service with a condition compose knows, without cycles")
    func dependencies() throws {
        let compose = try Compose.load()
        let names = Set(compose.services.map(\.name))
        var edges: [String: [String]] = [:]
        for (name, _) in compose.services {
            for (target, condition) in try compose.dependencies(name) {
                edges[name, default: []].append(target)
                #expect(names.contains(target), "\(name) depends on \(target), which is not a service")
                #expect(["service_started", "service_healthy", "service_completed_successfully"].contains(condition),
                        "\(name) waits for \(target) with unknown condition \(condition)")
                if condition == "service_healthy" {
                    #expect(compose.service(target)?["healthcheck"]?["test"] != nil, "\(name) waits for \(target) to be healthy; it has no healthcheck")
                }
                if condition == "service_completed_successfully" {
                    #expect(compose.service(target)?["restart"]?.string == "no", "\(target) is waited for to complete, so it must be restart: \"no\"")
                }
            }
        }
        #expect(try compose.dependencies("migrate").map { "\($0.0) \($0.1)" } == ["postgres service_healthy"])
        #expect(try compose.dependencies("setup").contains { $0 == ("migrate", "service_completed_successfully") })
        for node in Self.nodes + ["node"] {
            #expect(try compose.dependencies(node).contains { $0 == ("migrate", "service_completed_successfully") }, "\(node) must wait for migrate")
        }
        for oneShot in ["migrate", "setup"] { #expect(compose.service(oneShot)?["restart"]?.string == "no") }
        func reaches(_ from: String, _ target: String, _ seen: Set<String> = []) -> Bool {
            (edges[from] ?? []).contains { $0 == target || (!seen.contains($0) && reaches($0, target, seen.union([$0]))) }
        }
        for name in names { #expect(!reaches(name, name), "\(name) depends on itself through depends_on") }
    }

    @Test("every depot command is a real verb whose options the real binary accepts")
    func depotCommands() async throws {
        let compose = try Compose.load()
        var checked = 0
        for (name, _) in compose.services where compose.usesDepotImage(name) {
            let invocations = try compose.depotInvocations(name)
            #expect(!invocations.isEmpty, "\(name) runs the depot image but no depot command")
            for arguments in invocations {
                let verb = try #require(arguments.first, "\(name) runs depot without a verb")
                // The real parser reads every option (and its value) before it meets --help: an
                // unknown option or one missing its value fails here exactly as it would in the container.
                let output = try await runProcess(depotExecutable, arguments + ["--help"])
                #expect(output.status == 0, "\(name): depot \(arguments.joined(separator: " ")) is refused: \(output.stderr)")
                #expect(output.stdout.contains("Usage: depot \(verb)"), "\(name): depot \(verb) is not a verb")
                checked += 1
            }
        }
        #expect(checked >= 8)
        #expect(try compose.depotInvocations("migrate") == [["migrate"]])
        for node in Self.nodes {
            let arguments = try #require(try compose.depotInvocations(node).first)
            #expect(arguments.first == "node" && Compose.option("name", in: arguments) == node, "\(node) must run depot node --name \(node)")
        }
        let scaled = try #require(try compose.depotInvocations("node").first)
        #expect(Compose.option("name", in: scaled)?.contains("$HOSTNAME") == true, "the node template names replicas after $HOSTNAME")
        for echo in ["echo-1", "echo-2", "echo-3"] {
            let arguments = try #require(try compose.depotInvocations(echo).first)
            #expect(arguments.first == "echo-server" && Compose.option("host", in: arguments) == "0.0.0.0")
        }
    }

    @Test("postgres and every node have health checks, on the port the node listens on, with a program the image has")
    func healthChecks() throws {
        let compose = try Compose.load()
        let postgres = try #require(compose.service("postgres")?["healthcheck"]?["test"]?.strings)
        #expect(postgres.contains("pg_isready"))
        let runtimePackages = try Dockerfile.load().runtimePackages
        for node in Self.nodes + ["node"] {
            let test = try #require(compose.service(node)?["healthcheck"]?["test"]?.strings, "\(node) has no health check")
            let url = try #require(test.first { $0.hasPrefix("http://") }.flatMap(URLComponents.init(string:)), "\(node)'s health check calls no URL")
            #expect(url.path == "/healthz")
            let listen = try #require(compose.depotInvocations(node).first.flatMap { Compose.option("http", in: $0) })
            #expect(url.port.map(String.init) == listen.split(separator: ":").last.map(String.init), "\(node) checks port \(url.port ?? 0), listens on \(listen)")
        }
        for (name, service) in compose.services where compose.usesDepotImage(name) {
            guard let test = service["healthcheck"]?["test"]?.strings, test.first == "CMD", test.count > 1 else { continue }
            #expect(test[1] == "depot" || runtimePackages.contains(test[1]), "\(name)'s health check runs \(test[1]), which the runtime image does not install")
        }
    }

    @Test("published ports are distinct, the nodes are on 8081-8083, and each maps to the port its process listens on")
    func ports() throws {
        let compose = try Compose.load()
        var hostPorts: [String: String] = [:]
        for (name, _) in compose.services {
            for port in compose.ports(name) {
                guard let host = port.host else { continue }
                #expect(hostPorts[host] == nil, "host port \(host) is published by \(hostPorts[host] ?? "") and \(name)")
                hostPorts[host] = name
            }
        }
        for (node, host) in zip(Self.nodes, ["8081", "8082", "8083"]) {
            let published = compose.ports(node)
            #expect(published.map(\.host) == [host], "\(node) should publish \(host)")
            let listen = try #require(compose.depotInvocations(node).first.flatMap { Compose.option("http", in: $0) })
            #expect(published.first.map { listen.hasSuffix(":\($0.container)") } == true, "\(node) publishes \(published) but listens on \(listen)")
        }
        for (name, _) in compose.services where name.hasPrefix("echo-") {
            let port = try #require(compose.depotInvocations(name).first.flatMap { Compose.option("port", in: $0) })
            #expect(compose.ports(name).allSatisfy { $0.container == port }, "\(name) listens on \(port) but publishes \(compose.ports(name))")
        }
    }

    @Test("every file the compose file and the Dockerfile name is in the repository, and the build context keeps them")
    func referencedFiles() throws {
        let compose = try Compose.load()
        let root = packageRoot
        func exists(_ relative: String) -> Bool { FileManager.default.fileExists(atPath: root.appendingPathComponent(relative).path) }
        for (name, service) in compose.services {
            if let build = service["build"] {
                let context = build.string ?? build["context"]?.string ?? "."
                let dockerfile = build["dockerfile"]?.string ?? "Dockerfile"
                #expect(exists(context + "/" + dockerfile), "\(name) builds \(context)/\(dockerfile), which is missing")
            }
            // Bind mounts, and every absolute path a command names inside one.
            var mounts: [(source: String, target: String)] = []
            for volume in service["volumes"]?.strings ?? [] {
                let parts = volume.split(separator: ":").map(String.init)
                guard parts[0].hasPrefix("."), parts.count >= 2 else { continue }
                #expect(exists(parts[0]), "\(name) mounts \(parts[0]), which is missing")
                mounts.append((parts[0], parts[1]))
            }
            for word in try compose.argv(name) {
                for mount in mounts where word.hasPrefix(mount.target + "/") {
                    let file = mount.source + word.dropFirst(mount.target.count)
                    #expect(exists(file), "\(name) uses \(word), that is \(file), which is missing")
                }
            }
        }
        #expect(try compose.argv("setup").contains("/setup/setup.sql") && exists("scripts/compose/setup.sql"))

        let dockerfile = try Dockerfile.load()
        #expect(!dockerfile.copiedSources.isEmpty)
        let ignored = try String(contentsOf: root.appendingPathComponent(".dockerignore"), encoding: .utf8)
            .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        for source in dockerfile.copiedSources {
            #expect(exists(source), "the Dockerfile copies \(source), which is missing")
            #expect(!ignored.contains(source) && !ignored.contains(source + "/"), ".dockerignore leaves \(source) out of the build")
        }
        for excluded in [".build", ".depot", ".git"] { #expect(ignored.contains(excluded), ".dockerignore should exclude \(excluded)") }
    }

    @Test("the Dockerfile builds the depot product statically on swift 6 and runs it as a non-root user on the same distribution")
    func dockerfile() throws {
        let dockerfile = try Dockerfile.load()
        let package = try String(contentsOf: packageRoot.appendingPathComponent("Package.swift"), encoding: .utf8)
        #expect(dockerfile.stages.count == 2)
        let build = try #require(dockerfile.stages.first)
        let runtime = try #require(dockerfile.stages.last)
        #expect(build.image.hasPrefix("swift:6."), "build stage is \(build.image)")
        let distribution = try #require(build.image.split(separator: "-").last.map(String.init), "pin the build image's distribution")
        #expect(runtime.image.contains(distribution), "build on \(build.image) but run on \(runtime.image)")
        #expect(build.packages.contains("libpq-dev"))

        let buildCommand = try #require(build.runs.first { $0.contains("swift build") })
        #expect(buildCommand.contains("-c release") && buildCommand.contains("--static-swift-stdlib"))
        let product = try #require(buildCommand.firstMatch(of: /--product ([A-Za-z0-9_-]+)/)?.1)
        #expect(package.contains(".executable(name: \"\(product)\""), "the Dockerfile builds product \(product), which Package.swift does not define")
        #expect(product == "depot")

        for needed in ["libpq5", "ca-certificates"] { #expect(runtime.packages.contains(needed), "the runtime stage lacks \(needed)") }
        #expect(runtime.instructions.contains { $0.keyword == "COPY" && $0.arguments.hasPrefix("--from=build ") && $0.arguments.hasSuffix(" /usr/local/bin/depot") })
        let user = try #require(runtime.instructions.last { $0.keyword == "USER" }?.arguments)
        #expect(user != "root" && user != "0")
        #expect(runtime.instructions.contains { $0.keyword == "ENTRYPOINT" && $0.arguments == #"["depot"]"# })
        let journal = try #require(runtime.instructions.first { $0.keyword == "ENV" && $0.arguments.hasPrefix("DEPOT_JOURNAL_DIR=") }?.arguments
            .split(separator: "=").last.map(String.init))
        #expect(runtime.instructions.contains { $0.keyword == "VOLUME" && $0.arguments.contains(journal) })

        // The nodes keep their journals where the image's volume is.
        let compose = try Compose.load()
        for node in Self.nodes + ["node"] {
            let arguments = try #require(try compose.depotInvocations(node).first)
            #expect(Compose.option("journal", in: arguments) == journal, "\(node) should keep its journal in \(journal)")
        }
    }

    @Test("every service that uses the database points DEPOT_DATABASE_URL (or psql) at the postgres service and its credentials")
    func databaseURLs() throws {
        let compose = try Compose.load()
        let postgres = try #require(compose.service("postgres")?["environment"])
        let user = try #require(postgres["POSTGRES_USER"]?.string)
        let password = try #require(postgres["POSTGRES_PASSWORD"]?.string)
        let database = try #require(postgres["POSTGRES_DB"]?.string)
        func check(_ text: String?, _ label: String) {
            guard let text, let url = URLComponents(string: text) else { Issue.record("\(label): no database URL"); return }
            #expect(url.scheme == "postgres" && url.host == "postgres" && url.port == 5432, "\(label): \(text)")
            #expect(url.user == user && url.password == password && url.path == "/" + database, "\(label): \(text)")
        }
        for (name, service) in compose.services where compose.usesDepotImage(name) {
            guard let verb = try compose.depotInvocations(name).first?.first, verb != "echo-server" else { continue }
            check(service["environment"]?["DEPOT_DATABASE_URL"]?.string, name)
        }
        check(try compose.argv("setup").first { $0.hasPrefix("postgres://") }, "setup")
    }

    @Test("setup.sql defines seed 002's and seed 004's rows on a migrated database, twice without change, and a node runs them all")
    func setupSQL() async throws {
        let cluster = try await Cluster.fresh()
        let psql = try #require(Compose.psql, "psql not found; scripts/test installs PostgreSQL")
        let setup = packageRoot.appendingPathComponent("scripts/compose/setup.sql").path
        func snapshot() async throws -> [String] {
            try await cluster.rows("""
                SELECT 'store ' || name FROM depot.stores
                UNION ALL SELECT 'endpoint ' || name || ' ' || url FROM depot.endpoints
                UNION ALL SELECT 'processor ' || name || ' ' || kind || ' ' || store || ' ' || coalesce(target_endpoint, handler)
                              || ' ' || is_active FROM depot.processors
                ORDER BY 1
                """).map { try $0.decode(at: 0) }
        }
        var runs: [[String]] = []
        for _ in 0..<2 {
            let output = try await runProcess(psql, [cluster.url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", setup])
            #expect(output.status == 0, "psql -f setup.sql failed: \(output.stderr)")
            runs.append(try await snapshot())
        }
        #expect(runs[0] == runs[1], "a second run changed the rows")
        #expect(runs[0] == [
            "endpoint SettlePaymentEP http://echo-3:9000/settle-payment",
            "endpoint SimpleStockQuoteService1 http://echo-1:9000/services/SimpleStockQuoteService",
            "endpoint SimpleStockQuoteService2 http://echo-2:9000/services/SimpleStockQuoteService",
            "endpoint SimpleStockQuoteService3 http://echo-3:9000/services/SimpleStockQuoteService",
            "processor Forwarder1 forwarding JMSMS SimpleStockQuoteService1 true",
            "processor Forwarder2 forwarding JMSMS SimpleStockQuoteService2 true",
            "processor Forwarder3 forwarding JMSMS SimpleStockQuoteService3 true",
            "processor PaymentRequestProcessor sampling PaymentRequestMessageStore call:SettlePaymentEP true",
            "store JMSMS",
            "store PaymentRequestMessageStore",
        ])

        // Every endpoint is a back end the compose file runs, on the port it listens on.
        let compose = try Compose.load()
        for row in runs[0] where row.hasPrefix("endpoint ") {
            let url = try #require(URLComponents(string: String(row.split(separator: " ")[2])))
            let service = try #require(url.host)
            let arguments = try #require(try compose.depotInvocations(service).first, "endpoint host \(service) is not a depot service")
            #expect(arguments.first == "echo-server" && Compose.option("port", in: arguments) == url.port.map(String.init), "\(row)")
        }

        // A node takes every row (none is refused for a missing handler or endpoint).
        let node = cluster.startNode("compose-setup-check")
        let running = try await eventually { await node.node.runningProcessors().count == 4 }
        let processors = await node.node.runningProcessors()
        try await node.stop()
        #expect(running, "the node runs \(processors)")
        #expect(try await cluster.integer("SELECT count(*) FROM depot.processors WHERE NOT is_active") == 0)
        await cluster.pool.close()
    }
}
