import Foundation

/// A small deterministic generator (SplitMix64), so that a failing fuzz run repeats with its seed.
struct FuzzRandom {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) } }
}

/// Requests for `depot fuzz`: valid ones, structured mutations (each breaks one rule of HTTP or of
/// the ingress API), and random byte mutations of valid ones. Every request asks to close the
/// connection; the fuzzer half-closes after sending, so a body shorter than its length ends at once.
enum FuzzRequests {
    static func request(_ random: inout FuzzRandom, store: String) -> [UInt8] {
        switch random.below(10) {
        case 0...2: return valid(&random, store: store)
        case 3...6: return structured(&random, store: store)
        default: return mutated(valid(&random, store: store), &random)
        }
    }

    static func head(_ method: String, _ path: String, _ headers: [String], body: [UInt8], version: String = "HTTP/1.1") -> [UInt8] {
        var text = "\(method) \(path) \(version)\r\nHost: fuzz\r\nConnection: close\r\n"
        for header in headers { text += header + "\r\n" }
        return Array(text.utf8) + Array("Content-Length: \(body.count)\r\n\r\n".utf8) + body
    }

    static func valid(_ random: inout FuzzRandom, store: String) -> [UInt8] {
        var headers: [String] = []
        if random.chance(30) { headers.append("Idempotency-Key: k\(random.below(200))") }
        if random.chance(20) { headers.append("Depot-Priority: \(random.below(20) - 10)") }
        if random.chance(20) { headers.append("Depot-Header-Tenant: t\(random.below(5))") }
        if random.chance(10) { headers.append("Depot-Group-Key: g\(random.below(5))") }
        if random.chance(25) {
            let items = (0..<(1 + random.below(5))).map { _ in #"{"payload":"item \#(random.below(1000))"}"# }
            return post("/stores/\(store)/messages/batch", headers + ["Content-Type: application/json"], body: Array("[\(items.joined(separator: ","))]".utf8))
        }
        return post("/stores/\(store)/messages", headers + ["Content-Type: text/plain"], body: random.bytes(random.below(64)))
    }

    static func structured(_ random: inout FuzzRandom, store: String) -> [UInt8] {
        let path = "/stores/\(store)/messages"
        switch random.below(24) {
        case 0: return head(random.pick(["GET", "PUT", "DELETE", "P@ST", "", "POST POST"]), path, [], body: [])
        case 1: return head(path: path, version: random.pick(["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "http/1.1", "HTTP/1.1x", ""]))
        case 2: return post(path, ["Bad Header: x", ": empty", "X\u{1}: y", "Ünïcode: x"].shuffledPick(&random), body: Array("x".utf8))
        case 3: return post(path, [], body: []).replacing("Content-Length: 0", with: random.pick(["Content-Length: -1", "Content-Length: abc", "Content-Length: 1, 2", "Content-Length: 99999999999"]))
        case 4: return chunked(path, size: random.pick(["+5", "-5", " 5", "5 ", "0x5", "5;ext", "fffffffffffffffff", "", "5\t"]))
        case 5: return post(path, ["Depot-Priority: 1", "Depot-Priority: \(random.pick(["x", "2", ""]))"], body: Array("x".utf8))
        case 6: return post(path, ["Depot-Priority: " + random.pick(["99999999999", "1.5", "-", "+1"])], body: Array("x".utf8))
        case 7: return post(path, ["Depot-Delay-Ms: " + random.pick(["-1", "1e3", "99999999999999999999"])], body: Array("x".utf8))
        case 8: return post(path, ["Content-Type: text/plain", "content-type: application/json"], body: Array("x".utf8))
        case 9: return Array("POST \(path) HTTP/1.1\r\nIdempotency-Key: caf".utf8) + [0xE9, 0x0D, 0x0A] + Array("Connection: close\r\nContent-Length: 1\r\n\r\nx".utf8)
        case 10: return post(random.pick(["/stores/%EF%BB%BF\(store)/messages", "/stores/\(store)%E2%80%AE/messages", "/stores/%ZZ/messages",
                                          "/stores//messages", "/stores/\(store)/messages/batch/x", "/nope", "/stores/%00/messages"]), [], body: Array("x".utf8))
        case 11: return post("\(path)/batch", ["Content-Type: application/json"], body: Array(random.pick(["[", "[]", "{}", "[1,]", "[,]", "[{\"payload\":1}]]", "[{\"pay\":1}]", "[{\"payload\":\"\\ud800\"}]"]).utf8))
        case 12: return post("\(path)/batch", ["Content-Type: application/json"], body: Array(("[" + String(repeating: "0,", count: 10_000 + random.below(100)) + "0]").utf8))
        case 13: return post("\(path)/batch", ["Content-Type: application/json"], body: Array(("[{\"payload\":" + String(repeating: "[", count: 600 + random.below(3000)) + "]}]").utf8))
        case 14: return post("\(path)/batch", ["Content-Type: application/x-ndjson"], body: Array("{\"payload\":\"a\"}\n\n{bad}\n".utf8))
        case 15: return post("\(path)/batch", ["Content-Type: text/csv"], body: Array("a,b".utf8))
        case 16: return post(path, ["X-Long: " + String(repeating: "a", count: 70_000)], body: [])
        case 17: return post(path, ["Transfer-Encoding: gzip"], body: [])
        case 18: return post(path, ["Transfer-Encoding: chunked"], body: Array("x".utf8))
        case 19: return Array("POST \(path) HTTP/1.1\nHost: x\n\n".utf8)
        case 20: return post(path, ["Depot-Header-: x", "Depot-Header-X: a\u{0}b"].shuffledPick(&random), body: Array("x".utf8))
        case 21: return post(path, ["Idempotency-Key: " + random.pick(["", String(repeating: "k", count: 201), "a\u{7}b"])], body: Array("x".utf8))
        case 22: return random.bytes(random.below(200))
        default: return post(path, ["Expect: 100-continue"], body: Array("x".utf8))
        }
    }

    private static func head(path: String, version: String) -> [UInt8] { head("POST", path, [], body: [], version: version) }

    static func post(_ path: String, _ headers: [String], body: [UInt8]) -> [UInt8] { head("POST", path, headers, body: body) }

    static func chunked(_ path: String, size: String) -> [UInt8] {
        Array("POST \(path) HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n\(size)\r\nhello\r\n0\r\n\r\n".utf8)
    }

    /// Flips, inserts, deletes or duplicates a few bytes of `request`.
    static func mutated(_ request: [UInt8], _ random: inout FuzzRandom) -> [UInt8] {
        var bytes = request
        for _ in 0..<(1 + random.below(4)) where !bytes.isEmpty {
            let at = random.below(bytes.count)
            switch random.below(5) {
            case 0: bytes[at] ^= UInt8(1 << random.below(8))
            case 1: bytes.insert(random.pick([0, 9, 10, 13, 32, 58, 0x80, 0xFF, 0xC3, UInt8(ascii: "%")]), at: at)
            case 2: bytes.remove(at: at)
            case 3: bytes.insert(contentsOf: bytes[at..<min(bytes.count, at + random.below(16))], at: at)
            default: bytes[at] = UInt8(truncatingIfNeeded: random.next())
            }
        }
        return bytes
    }
}

private extension Array where Element == String {
    func shuffledPick(_ random: inout FuzzRandom) -> [String] { [self[random.below(count)]] }
}

private extension Array where Element == UInt8 {
    func replacing(_ text: String, with replacement: String) -> [UInt8] {
        let string = String(decoding: self, as: UTF8.self)
        return Array(string.replacingOccurrences(of: text, with: replacement).utf8)
    }
}
