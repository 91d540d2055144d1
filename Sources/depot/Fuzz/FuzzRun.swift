import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a fuzz run saw: statuses by count, messages the node said it created, and anything that
/// breaks the rules (an undocumented status, a request the node never answered in time).
struct FuzzReport: Codable, Sendable {
    var requests = 0
    var statuses: [String: Int] = [:]
    var created = 0
    var closedWithoutAnswer = 0
    var problems: [String] = []

    mutating func merge(_ other: FuzzReport) {
        requests += other.requests
        statuses.merge(other.statuses, uniquingKeysWith: +)
        created += other.created
        closedWithoutAnswer += other.closedWithoutAnswer
        problems += other.problems.prefix(max(0, 20 - problems.count))
    }
}

/// Sends fuzz requests to a node over fresh loopback connections, on threads of its own.
enum FuzzRun {
    /// The statuses the README documents for ingress; anything else (a 500 above all) is a problem.
    static let documented: Set<Int> = [202, 400, 401, 404, 405, 408, 413, 415, 431, 501, 505]

    static func run(host: String, port: Int, store: String, requests: Int, workers: Int, seed: UInt64) async -> FuzzReport {
        await withTaskGroup(of: FuzzReport.self) { group in
            for worker in 0..<workers {
                let share = requests / workers + (worker < requests % workers ? 1 : 0)
                group.addTask {
                    await withCheckedContinuation { continuation in
                        let thread = Thread {
                            var random = FuzzRandom(seed: seed &+ UInt64(worker) &* 0x1000_0001)
                            var report = FuzzReport()
                            for _ in 0..<share {
                                exchange(FuzzRequests.request(&random, store: store), host: host, port: port, into: &report)
                            }
                            continuation.resume(returning: report)
                        }
                        thread.stackSize = 1 << 20
                        thread.start()
                    }
                }
            }
            var total = FuzzReport()
            for await part in group { total.merge(part) }
            return total
        }
    }

    /// Sends one request, half-closes, reads every response until the node closes.
    static func exchange(_ request: [UInt8], host: String, port: Int, into report: inout FuzzReport) {
        report.requests += 1
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr(host)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            report.problems.append("cannot connect: \(String(cString: strerror(errno))) (did the node die?)")
            return
        }
        var timeout = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var offset = 0
        while offset < request.count {
            let sent = request.withUnsafeBytes { send(fd, $0.baseAddress! + offset, request.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { break }
            offset += sent
        }
        shutdown(fd, Int32(SHUT_WR))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 65536, 0) }
            if count > 0 { received += buffer[0..<count]; continue }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                report.problems.append("no end to the answer within 15 s: \(String(decoding: request.prefix(80), as: UTF8.self).debugDescription)")
            }
            break
        }
        let statuses = answers(in: received)
        if statuses.isEmpty { report.closedWithoutAnswer += 1 }
        for (status, body) in statuses {
            report.statuses[String(status), default: 0] += 1
            if !documented.contains(status) {
                report.problems.append("status \(status) for \(String(decoding: request.prefix(120), as: UTF8.self).debugDescription): \(body.prefix(200))")
            }
            if status == 202 { report.created += createdCount(body) }
        }
    }

    /// The final (non-1xx) responses in `bytes`, by Content-Length framing.
    static func answers(in bytes: [UInt8]) -> [(Int, String)] {
        var result: [(Int, String)] = []
        var rest = bytes[...]
        while let end = rest.firstRange(of: [13, 10, 13, 10]) {
            let head = String(decoding: rest[..<end.lowerBound], as: UTF8.self)
            let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
            let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            let bodyEnd = min(rest.endIndex, end.upperBound + length)
            if status >= 200 { result.append((status, String(decoding: rest[end.upperBound..<bodyEnd], as: UTF8.self))) }
            rest = rest[bodyEnd...]
        }
        return result
    }

    /// Messages a 202 body says were created: `"created": true` or `"created": N`.
    static func createdCount(_ body: String) -> Int {
        guard let data = body.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return 0 }
        if let flag = object["created"] as? Bool { return flag ? 1 : 0 }
        return (object["created"] as? Int) ?? 0
    }
}
