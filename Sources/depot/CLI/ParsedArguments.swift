/// A command line split into positional arguments, option values and flags.
struct ParsedArguments: Sendable {
    let command: String
    var positional: [String] = []
    var values: [String: [String]] = [:]
    var flags: Set<String> = []

    /// Parses `arguments` against `command`'s options. `--name value`, `--name=value`, `-n value`,
    /// `-n5` (a short option's value attached); `--` ends the options. Throws a usage error naming the bad option and the help to read.
    init(_ arguments: [String], for command: Command) throws {
        self.command = command.name
        var index = 0
        var optionsEnded = false
        func spec(_ token: String) throws -> OptionSpec {
            let found: OptionSpec?
            if token.hasPrefix("--") {
                found = command.options.first { $0.name == token.dropFirst(2) }
            } else {
                found = command.options.first { $0.short.map { "-\($0)" } == token }
            }
            guard let found else {
                throw CLIFailure.usage("unknown option \(token) for 'depot \(command.name)'; see depot \(command.name) --help")
            }
            return found
        }
        while index < arguments.count {
            let token = arguments[index]
            index += 1
            if optionsEnded || !token.hasPrefix("-") || token == "-" {
                positional.append(token)
                continue
            }
            if token == "--" { optionsEnded = true; continue }
            if token == "--help" || token == "-h" { throw CLIFailure.helpRequested(command.help) }
            var name = token
            var inlineValue: String?
            if token.hasPrefix("--"), let equals = token.firstIndex(of: "=") {
                name = String(token[..<equals])
                inlineValue = String(token[token.index(after: equals)...])
            } else if !token.hasPrefix("--"), token.count > 2 {
                // -n5: a short option with its value attached. Anything else (-xyz) is unknown.
                guard let option = try? spec(String(token.prefix(2))), option.value != nil else {
                    throw CLIFailure.usage("unknown option \(token) for 'depot \(command.name)'; see depot \(command.name) --help")
                }
                name = String(token.prefix(2))
                inlineValue = String(token.dropFirst(2))
            }
            let option = try spec(name)
            if let placeholder = option.value {
                let value: String
                if let inlineValue {
                    value = inlineValue
                } else {
                    guard index < arguments.count else {
                        throw CLIFailure.usage("\(name) needs a value (\(name) \(placeholder)); see depot \(command.name) --help")
                    }
                    value = arguments[index]
                    index += 1
                }
                if !option.repeatable, values[option.name] != nil {
                    throw CLIFailure.usage("\(name) was given twice; give it once")
                }
                values[option.name, default: []].append(value)
            } else {
                if inlineValue != nil { throw CLIFailure.usage("\(name) takes no value") }
                flags.insert(option.name)
            }
        }
    }

    func value(_ name: String) -> String? { values[name]?.last }
    func all(_ name: String) -> [String] { values[name] ?? [] }
    func flag(_ name: String) -> Bool { flags.contains(name) }

    /// The positional arguments, checked against how many the command takes.
    func positionals(exactly count: Int, usage: String) throws -> [String] {
        guard positional.count == count else {
            let problem = positional.count < count ? "missing argument" : "unexpected argument \(positional[count])"
            throw CLIFailure.usage("\(problem); usage: \(usage)")
        }
        return positional
    }

    /// An integer option, checked against a range.
    func integer(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = value(name) else { return nil }
        guard let number = Int(text), range.contains(number) else {
            throw CLIFailure.usage("--\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound), got '\(text)'")
        }
        return number
    }

    /// The longest duration an option takes: 3,650 days. Beyond it a number of milliseconds
    /// overflowed (99999999999999999999s crashed), and no lease or delay needs more.
    static let longestDuration = 3650.0 * 86400

    /// A duration option: a number and a unit (500ms, 10s, 5m, 2h, 1d), at most 3650d.
    func duration(_ name: String) throws -> Duration? {
        guard let text = value(name) else { return nil }
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (unit, seconds) in units where text.hasSuffix(unit) {
            let number = text.dropLast(unit.count)
            if let amount = Double(number), amount >= 0, amount.isFinite, !(unit == "m" && text.hasSuffix("ms")) {
                guard amount * seconds <= Self.longestDuration else {
                    throw CLIFailure.usage("--\(name) '\(text)' is longer than the longest duration Depot takes, 3650d")
                }
                return .milliseconds(Int64((amount * seconds * 1000).rounded()))
            }
        }
        throw CLIFailure.usage("--\(name) must be a duration with a unit, such as 500ms, 10s, 5m, 2h or 1d; got '\(text)'")
    }
}
