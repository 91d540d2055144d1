import Foundation

/// A journal file could not be read or written. `description` names the file and says what to do.
public struct JournalError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable {
        let name: String
        /// A record in the middle of the file is damaged: replaying past it would lose or invent messages.
        public static let corrupt = Code(name: "corrupt")
        /// The operating system refused a read, write, fsync or rename (disk full, I/O error, permissions).
        public static let io = Code(name: "io")
        /// The journal was closed, or an earlier failed write left it unusable.
        public static let unusable = Code(name: "unusable")
    }

    public let code: Code
    /// The journal file.
    public let path: String
    public let message: String
    /// How to fix it.
    public let hint: String?

    init(_ code: Code, path: String, _ message: String, hint: String? = nil) {
        self.code = code
        self.path = path
        self.message = message
        self.hint = hint
    }

    /// An `io` error for the failed call `operation`, from `errno` (or `number`).
    static func system(_ operation: String, path: String, errno number: Int32 = errno) -> JournalError {
        let hint: String? = switch number {
        case ENOSPC, EDQUOT: "free disk space (or move DEPOT_JOURNAL_DIR to a larger disk); nothing that failed was stored"
        case EACCES, EPERM, EROFS: "make the folder writable by this process, or point DEPOT_JOURNAL_DIR elsewhere"
        default: nil
        }
        return JournalError(.io, path: path, "\(operation) failed: \(String(cString: strerror(number)))", hint: hint)
    }

    public var description: String {
        let text = "journal \(path): \(message)"
        return hint.map { "\(text); \($0)" } ?? text
    }
}
