import Foundation

/// One-line, timestamped log records on standard error, each naming its node.
///
/// Records carry what producers sent (payloads, replies, error texts), so every control
/// character (C0, DEL, C1: line feed, carriage return, escape, bell, …) and every character that
/// `NameCharacters` refuses (direction overrides, zero-width spaces, …) is written escaped, as
/// `\n`, `\r`, `\t` or `\u{1B}`: a payload can neither start a forged record nor drive the terminal.
public enum NodeLog {
    public static func info(node: String, _ message: String) { write("info", node, message) }
    public static func warning(node: String, _ message: String) { write("warn", node, message) }
    public static func error(node: String, _ message: String) { write("error", node, message) }

    private static func write(_ level: String, _ node: String, _ message: String) {
        let time = Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true))
        FileHandle.standardError.write(Data("\(time) \(level) [\(escaped(node))] \(escaped(message))\n".utf8))
    }

    /// `text` with its control and invisible characters escaped (see `Quoting.oneLine`).
    public static func escaped(_ text: String) -> String { Quoting.oneLine(text) }
}
