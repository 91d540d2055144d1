import Postgres

/// Names the user typed (or a file named) put into text that something else will read: a shell
/// that runs a copied hint, psql that runs a dry run's SQL, a terminal that shows a log line.
/// Each gets the quoting it needs, so a name stays data there.
public enum Quoting {
    /// `text` as one shell word for a POSIX shell: unchanged when it is plain (letters, digits,
    /// `._-/:@%+=,`), else in single quotes with each `'` written `'\''`; with a control character
    /// in it, bash's `$'…'` with escapes, so that a pasted hint stays one line.
    public static func shell(_ text: String) -> String {
        if !text.isEmpty, text.unicodeScalars.allSatisfy({ $0.isASCII && (plainShell.contains($0) || CharacterClass.isAlphanumeric($0)) }) {
            return text
        }
        if text.unicodeScalars.contains(where: isControl) {
            var result = "$'"
            for scalar in text.unicodeScalars {
                switch scalar {
                case "'": result += "\\'"
                case "\\": result += "\\\\"
                case _ where isControl(scalar): result += scalar.value < 0x100 ? "\\x" + hex(scalar.value, width: 2) : "\\u" + hex(scalar.value, width: 4)
                default: result.unicodeScalars.append(scalar)
                }
            }
            return result + "'"
        }
        return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// `text` as an SQL string literal (standard_conforming_strings, on since PostgreSQL 9.1):
    /// the Postgres module's `quoteLiteral`, which `SQL.withLiterals()` writes with.
    public static func sql(_ text: String) -> String { quoteLiteral(text) }

    /// `text` on one line with nothing a terminal acts on: line feed, carriage return and tab as
    /// `\n`, `\r`, `\t`, every other control character and every character `NameCharacters`
    /// refuses (direction overrides, zero-width spaces, …) as `\u{HEX}`. For log records and SQL
    /// `--` comments, which a line break would end. Unchanged (and not copied) when clean.
    public static func oneLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where isControl(scalar): result += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// C0, DEL, C1, and what `NameCharacters` refuses.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (scalar.value >= 0x7F && scalar.value < 0xA0)
            || NameCharacters.refused.contains { $0.contains(scalar.value) }
    }

    private static let plainShell = Set("._-/:@%+=,".unicodeScalars)

    private static func hex(_ value: UInt32, width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    private enum CharacterClass {
        static func isAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
            (48...57).contains(scalar.value) || (65...90).contains(scalar.value) || (97...122).contains(scalar.value)
        }
    }
}
