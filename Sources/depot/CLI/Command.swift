/// One option a command accepts.
struct OptionSpec: Sendable {
    /// Long name without dashes (`priority` for `--priority`).
    let name: String
    /// One-letter alias without the dash (`n` for `-n`), if any.
    var short: Character? = nil
    /// The placeholder shown in help (`N`, `PATH`); nil for a flag that takes no value.
    var value: String? = nil
    var repeatable = false
    let help: String
}

/// A verb of the `depot` program: its help text and what it runs.
struct Command: Sendable {
    let name: String
    let summary: String
    /// Positional arguments, as shown in the usage line (`STORE`, `[NAME]`).
    var arguments: [(name: String, help: String)] = []
    var options: [OptionSpec] = []
    /// Extra help text after the options (examples, notes).
    var notes: String = ""
    let run: @Sendable (ParsedArguments) async throws -> Void

    var usage: String {
        let optionsPart = options.isEmpty ? "" : " [options]"
        let argumentsPart = arguments.map { " \($0.name)" }.joined()
        return "depot \(name)\(argumentsPart)\(optionsPart)"
    }

    var help: String {
        var lines = ["\(summary)", "", "Usage: \(usage)"]
        if !arguments.isEmpty {
            lines.append("")
            lines.append("Arguments:")
            let width = arguments.map(\.name.count).max() ?? 0
            lines += arguments.map { "  \($0.name.padding(toLength: width, withPad: " ", startingAt: 0))  \($0.help)" }
        }
        let allOptions = options + [OptionSpec(name: "help", short: "h", help: "show this help")]
        lines.append("")
        lines.append("Options:")
        let labels = allOptions.map { option -> String in
            var label = option.short.map { "-\($0), " } ?? "    "
            label += "--\(option.name)"
            if let value = option.value { label += " \(value)" }
            return label
        }
        let width = labels.map(\.count).max() ?? 0
        for (label, option) in zip(labels, allOptions) {
            lines.append("  \(label.padding(toLength: width, withPad: " ", startingAt: 0))  \(option.help)\(option.repeatable ? " (repeatable)" : "")")
        }
        if !notes.isEmpty {
            lines.append("")
            lines.append(notes)
        }
        return lines.joined(separator: "\n")
    }
}
