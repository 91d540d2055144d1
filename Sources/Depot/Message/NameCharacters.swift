/// The characters a store, processor or node name may not hold: controls, format characters
/// (byte order mark, zero-width spaces, direction marks, overrides and isolates, soft hyphen) and
/// the line and paragraph separators. They do not show, or they move the text around them, so a
/// name holding one can pass for another in `depot nodes` or a log. Migration 0011 refuses the
/// same set in the tables; this refuses it before a request or a node gets that far.
public enum NameCharacters {
    static let refused: [ClosedRange<UInt32>] = [
        0x0000...0x001F, 0x007F...0x009F, 0x00AD...0x00AD, 0x0600...0x0605, 0x061C...0x061C, 0x06DD...0x06DD,
        0x070F...0x070F, 0x180E...0x180E, 0x200B...0x200F, 0x2028...0x202E, 0x2060...0x2064, 0x2066...0x206F,
        0xFEFF...0xFEFF, 0xFFF9...0xFFFB,
    ]

    /// Why `name` cannot be a name, naming its first refused character (`U+202E RIGHT-TO-LEFT
    /// OVERRIDE at character 4`); nil when it can.
    public static func problem(in name: String) -> String? {
        for (offset, scalar) in name.unicodeScalars.enumerated() where refused.contains(where: { $0.contains(scalar.value) }) {
            let hex = String(scalar.value, radix: 16, uppercase: true)
            let code = String(repeating: "0", count: max(0, 4 - hex.count)) + hex
            let label = scalar.properties.name ?? scalar.properties.nameAlias
            return "holds U+\(code)\(label.map { " (\($0))" } ?? "") at character \(offset + 1); "
                + "names may not hold control, invisible or text-direction characters"
        }
        return nil
    }

    /// `name` with its refused characters as "?", safe to echo in an error.
    public static func shown(_ name: String) -> String {
        String(String.UnicodeScalarView(name.unicodeScalars.map { scalar in
            refused.contains(where: { $0.contains(scalar.value) }) ? "?" : scalar
        }))
    }
}
