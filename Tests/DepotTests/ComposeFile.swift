import Foundation
import TestSupport

// What docker-compose.yml and the Dockerfile say, read for ComposeFileTests without Docker.

// MARK: - docker-compose.yml

/// docker-compose.yml, read with `YAMLSubsetReader`, and what compose would make of it.
struct Compose {
    static let path = packageRoot.appendingPathComponent("docker-compose.yml")
    static let depotImage = "depot:local"

    let file: YAMLValue
    let services: [(name: String, value: YAMLValue)]

    static func load() throws -> Compose {
        let file = try YAMLSubsetReader.parse(try String(contentsOf: path, encoding: .utf8))
        guard let services = file["services"]?.entries else { throw YAMLSubsetError(line: 0, message: "no services") }
        return Compose(file: file, services: services.map { ($0.key, $0.value) })
    }

    func service(_ name: String) -> YAMLValue? { services.first { $0.name == name }?.value }

    /// Whether the service runs the image the Dockerfile builds (its default entrypoint is depot).
    func usesDepotImage(_ name: String) -> Bool {
        service(name)?["image"]?.string == Self.depotImage || (service(name)?["image"] == nil && service(name)?["build"] != nil)
    }

    /// depends_on as (service, condition); the list form means service_started.
    func dependencies(_ name: String) throws -> [(String, String)] {
        switch service(name)?["depends_on"] {
        case .list(let items)?: return items.compactMap(\.string).map { ($0, "service_started") }
        case .map(let entries)?: return entries.map { ($0.key, $0.value["condition"]?.string ?? "service_started") }
        default: return []
        }
    }

    /// The container's argv: entrypoint (the image's `depot` when not overridden) and command,
    /// with compose's `$$` read as `$`.
    func argv(_ name: String) throws -> [String] {
        func words(_ value: YAMLValue?) -> [String]? {
            switch value {
            case .list(let items)?: return items.compactMap(\.string).map(Self.uninterpolated)
            case .scalar(let text)?: return Self.shellWords(Self.uninterpolated(text))
            default: return nil
            }
        }
        let entrypoint = words(service(name)?["entrypoint"]) ?? (usesDepotImage(name) ? ["depot"] : [])
        return entrypoint + (words(service(name)?["command"]) ?? [])
    }

    /// The depot command lines (verb first) a service runs: directly, or as `sh -c 'exec depot …'`.
    func depotInvocations(_ name: String) throws -> [[String]] {
        let argv = try argv(name)
        if argv.first == "depot" { return [Array(argv.dropFirst())] }
        if ["sh", "/bin/sh"].contains(argv.first ?? ""), argv.count == 3, argv[1] == "-c" {
            let words = Self.shellWords(argv[2])
            guard words.first == "exec", words.dropFirst().first == "depot" else {
                throw YAMLSubsetError(line: 0, message: "\(name): sh -c should `exec depot …` so that SIGTERM reaches depot")
            }
            return [Array(words.dropFirst(2))]
        }
        return []
    }

    /// Published ports as (host, container); host is nil for "8080" (any free host port).
    func ports(_ name: String) -> [(host: String?, container: String)] {
        (service(name)?["ports"]?.strings ?? []).map { text in
            let parts = text.split(separator: "/")[0].split(separator: ":").map(String.init)
            return (parts.count >= 2 ? parts[parts.count - 2] : nil, parts[parts.count - 1])
        }
    }

    /// `$` that compose would substitute from the host environment (everything but `$$`).
    func interpolationProblems(_ name: String) -> [String] {
        var problems: [String] = []
        func visit(_ value: YAMLValue) {
            switch value {
            case .scalar(let text):
                if text.replacingOccurrences(of: "$$", with: "").contains("$") {
                    problems.append("\(text) takes a value from the host's environment; write $$ for a literal $")
                }
            case .list(let items): items.forEach(visit)
            case .map(let entries): entries.forEach { visit($0.value) }
            case .null: break
            }
        }
        service(name).map(visit)
        return problems
    }

    static func uninterpolated(_ text: String) -> String { text.replacingOccurrences(of: "$$", with: "$") }

    /// Splits a shell command line into words: spaces separate, quotes group, `$VAR` stays as written.
    static func shellWords(_ line: String) -> [String] {
        var words: [String] = []
        var current: String?
        var quote: Character?
        for character in line {
            if let open = quote {
                if character == open { quote = nil } else { current!.append(character) }
            } else if character == "\"" || character == "'" {
                quote = character
                current = current ?? ""
            } else if character == " " {
                if let word = current { words.append(word) }
                current = nil
            } else {
                current = (current ?? "") + String(character)
            }
        }
        if let word = current { words.append(word) }
        return words
    }

    /// The value of `--name VALUE` or `--name=VALUE` in a command line.
    static func option(_ name: String, in arguments: [String]) -> String? {
        for (index, word) in arguments.enumerated() {
            if word == "--\(name)", index + 1 < arguments.count { return arguments[index + 1] }
            if word.hasPrefix("--\(name)=") { return String(word.dropFirst(name.count + 3)) }
        }
        return nil
    }

    /// psql on PATH, or PostgreSQL's own bin folder.
    static var psql: URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let candidates = path.split(separator: ":").map { "\($0)/psql" }
            + ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).sorted().reversed()
                .map { "/usr/lib/postgresql/\($0)/bin/psql" }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }.map(URL.init(fileURLWithPath:))
    }
}

// MARK: - The Dockerfile

/// The Dockerfile as instructions grouped by stage, with ARG defaults substituted in FROM.
struct Dockerfile {
    struct Instruction {
        let keyword: String
        let arguments: String
    }

    struct Stage {
        var image: String
        var instructions: [Instruction] = []
        var runs: [String] { instructions.filter { $0.keyword == "RUN" }.map(\.arguments) }
        /// Packages an `apt-get install` in this stage names.
        var packages: [String] {
            runs.flatMap { run in
                run.components(separatedBy: "&&").filter { $0.contains("apt-get install") }
                    .flatMap { $0.split(separator: " ").map(String.init).drop { $0 != "install" }.dropFirst().filter { !$0.hasPrefix("-") } }
            }
        }
    }

    var stages: [Stage] = []
    var copiedSources: [String] {
        stages.flatMap(\.instructions).filter { $0.keyword == "COPY" && !$0.arguments.hasPrefix("--from") }
            .flatMap { $0.arguments.split(separator: " ").dropLast().map(String.init) }
    }
    var runtimePackages: [String] { stages.last?.packages ?? [] }

    static func load() throws -> Dockerfile {
        let text = try String(contentsOf: packageRoot.appendingPathComponent("Dockerfile"), encoding: .utf8)
        var logical: [String] = []
        var pending = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("#") || (trimmed.isEmpty && pending.isEmpty) { continue }
            if trimmed.hasSuffix("\\") {
                pending += trimmed.dropLast() + " "
            } else {
                logical.append(pending + trimmed)
                pending = ""
            }
        }
        var file = Dockerfile()
        var arguments: [String: String] = [:]
        for line in logical where !line.isEmpty {
            let keyword = String(line.prefix { $0 != " " }).uppercased()
            let rest = line.dropFirst(keyword.count).trimmingCharacters(in: .whitespaces)
                .replacingOccurrences(of: "  ", with: " ")
            switch keyword {
            case "ARG" where file.stages.isEmpty:
                let parts = rest.split(separator: "=", maxSplits: 1).map(String.init)
                arguments[parts[0]] = parts.count > 1 ? parts[1] : ""
            case "FROM":
                var image = String(rest.split(separator: " ")[0])
                for (name, value) in arguments { image = image.replacingOccurrences(of: "${\(name)}", with: value) }
                file.stages.append(Stage(image: image))
            default:
                guard !file.stages.isEmpty else { continue }
                file.stages[file.stages.count - 1].instructions.append(Instruction(keyword: keyword, arguments: rest))
            }
        }
        return file
    }
}
