import Foundation

/// One-line, timestamped log records on standard error, each naming its node.
public enum NodeLog {
    public static func info(node: String, _ message: String) { write("info", node, message) }
    public static func warning(node: String, _ message: String) { write("warn", node, message) }
    public static func error(node: String, _ message: String) { write("error", node, message) }

    private static func write(_ level: String, _ node: String, _ message: String) {
        let time = Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true))
        FileHandle.standardError.write(Data("\(time) \(level) [\(node)] \(message)\n".utf8))
    }
}
