import DepotHTTP
import Foundation

/// The bearer tokens a node's HTTP ingress accepts: at most one full token (`DEPOT_HTTP_TOKEN`:
/// every store, and `/metrics`) and any number of tokens limited to named stores (`--http-tokens
/// FILE`), so that one producer's token cannot write into another producer's stores.
/// With no token at all, ingress is open to anyone who can reach it.
public struct IngressTokens: Sendable, Equatable {
    /// A token that may POST messages into the stores it names, and nothing else.
    public struct Scoped: Sendable, Equatable {
        public var token: String
        public var stores: Set<String>

        public init(token: String, stores: Set<String>) {
            self.token = token
            self.stores = stores
        }
    }

    /// What a request's token lets it do.
    public enum Access: Sendable, Equatable {
        /// Every store and every route: the full token, or no token configured.
        case everything
        /// POST into these stores only.
        case stores(Set<String>)
    }

    /// The full token; nil for none. Default nil.
    public var full: String?
    /// Tokens limited to named stores. Default none.
    public var scoped: [Scoped]

    public init(full: String? = nil, scoped: [Scoped] = []) {
        self.full = full
        self.scoped = scoped
    }

    /// Whether requests need a token at all.
    public var required: Bool { full != nil || !scoped.isEmpty }

    /// What `given` (the bytes after `Bearer `) lets a request do; nil when it matches no token.
    /// Every token is compared, each without stopping at the first difference, so the time taken
    /// tells nothing about which token is near.
    public func access(for bytes: [UInt8]) -> Access? {
        var found: Access?
        if let full, Self.constantTimeEqual(bytes, Array(full.utf8)) { found = .everything }
        for token in scoped where Self.constantTimeEqual(bytes, Array(token.token.utf8)) {
            if found == nil { found = .stores(token.stores) }
        }
        return found
    }

    /// The token an `Authorization` value presents: the bytes after `Bearer `, or the password
    /// of `Basic BASE64(USER:PASSWORD)`; nil for another scheme or Basic that does not decode.
    public static func presented(in authorization: String) -> [UInt8]? {
        let lowered = authorization.prefix(6).lowercased()
        if lowered.hasPrefix("bearer") && authorization.utf8.dropFirst(6).first == UInt8(ascii: " ") {
            return Array(authorization.utf8.dropFirst(7))
        }
        guard lowered == "basic ",
              let decoded = Data(base64Encoded: authorization.dropFirst(6).trimmingCharacters(in: .whitespaces)),
              let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        return Array(decoded[decoded.index(after: colon)...])
    }

    /// Compares without stopping at the first difference, so timing does not leak a token.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}

extension IngressTokens {
    /// A line of a tokens file that cannot be used; names the line, never the token.
    public struct FileProblem: Error, Sendable, CustomStringConvertible {
        public let line: Int
        public let problem: String
        public var description: String { "line \(line): \(problem)" }
    }

    /// Reads the scoped tokens of a tokens file: one token per line, then spaces or tabs, then
    /// the stores it may write to, separated by commas (`TOKEN orders,invoices`). A store name
    /// holding a comma, a space, a tab or a % is written percent-encoded, as in the URL path
    /// (`my%20store`). Blank lines and lines starting with # are skipped.
    /// Throws for a line without stores, a token no Authorization header can carry, a token
    /// given twice or equal to `full`, an empty or badly encoded store name, or a name with
    /// characters that store names may not hold.
    public static func scopedTokens(fromFile text: String, full: String? = nil) throws -> [Scoped] {
        var tokens: [Scoped] = []
        var seen: Set<String> = full.map { [$0] } ?? []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count == 2 else {
                throw FileProblem(line: number, problem: fields.count < 2
                    ? "a token needs the stores it may write to after it (TOKEN store1,store2)"
                    : "more than a token and a list of stores; write a store name with spaces percent-encoded (my%20store)")
            }
            let token = String(fields[0])
            if let problem = HTTPHeaders.problem(name: "Authorization", value: "Bearer " + token) {
                throw FileProblem(line: number, problem: "the token cannot be sent in a header: \(problem)")
            }
            guard seen.insert(token).inserted else {
                throw FileProblem(line: number, problem: token == full
                    ? "the token is DEPOT_HTTP_TOKEN, the node's full token; give a scoped token a value of its own"
                    : "the token is on an earlier line too; give each token one line")
            }
            var stores: Set<String> = []
            for encoded in fields[1].split(separator: ",", omittingEmptySubsequences: false) {
                guard let name = IngressService.percentDecoded(String(encoded)), !name.isEmpty else {
                    throw FileProblem(line: number, problem: "store name \"\(NameCharacters.shown(String(encoded)))\" is empty, "
                        + "badly percent-encoded or not UTF-8")
                }
                if let problem = NameCharacters.problem(in: name) {
                    throw FileProblem(line: number, problem: "store name \"\(NameCharacters.shown(name))\" \(problem)")
                }
                stores.insert(name)
            }
            tokens.append(Scoped(token: token, stores: stores))
        }
        return tokens
    }
}
