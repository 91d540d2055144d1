import Depot
import Foundation
import Postgres
import Testing
import TestSupport

/// Bytes and characters a hostile producer or a careless operator may send: refused where they
/// arrive, saying what was wrong, never quietly changed into something else.
@Suite("Hostile bytes and names")
struct HostileNamesTests {
    static func post(_ path: String, header: [UInt8]) -> [UInt8] {
        Array("POST \(path) HTTP/1.1\r\nHost: test\r\nConnection: close\r\n".utf8) + header
            + Array("\r\nContent-Length: 2\r\n\r\nhi".utf8)
    }

    @Test("idempotency keys and header values that are not UTF-8 get 400: caf\\xe9 and caf\\xeb are never one key")
    func invalidUTF8IsRefused() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let ingress = try cluster.startIngress()
        defer { ingress.server.stop() }
        let port = ingress.server.port
        for header in [Array("Idempotency-Key: order-caf".utf8) + [0xE9] + Array("-1".utf8),
                       Array("Idempotency-Key: order-caf".utf8) + [0xEB] + Array("-1".utf8),
                       Array("Depot-Header-Tenant: ".utf8) + [0xFF, 0xFE],
                       Array("Depot-Group-Key: g".utf8) + [0xC3]] {
            let answer = try await rawExchange(port: port, Self.post("/stores/orders/messages", header: header))
            #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer)")
            #expect(answer.contains("not valid UTF-8"), "\(answer)")
        }
        let rawPath = Array("POST /stores/ord".utf8) + [0xE9] + Array("rs/messages HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n".utf8)
        #expect(try await rawExchange(port: port, rawPath).hasPrefix("HTTP/1.1 400"))
        let valid = try await rawExchange(port: port, Self.post("/stores/orders/messages", header: Array("Idempotency-Key: order-café-1".utf8)))
        #expect(valid.hasPrefix("HTTP/1.1 202"), "\(valid)")
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 1)
    }

    @Test("a byte order mark in a store name in the path is refused with 400 naming U+FEFF, not stored into the name without it")
    func byteOrderMarkInPath() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('bomtest')")
        let ingress = try cluster.startIngress()
        defer { ingress.server.stop() }
        for path in ["/stores/%EF%BB%BFbomtest/messages", "/stores/bom%E2%80%AEtest/messages/batch", "/stores/bom%1Btest/messages"] {
            let answer = try await ingress.send("POST", path, body: Data("[{\"payload\":\"x\"}]".utf8))
            #expect(answer.status == 400, "\(path): \(answer.status)")
            #expect(String(decoding: answer.body, as: UTF8.self).contains("U+"), "\(String(decoding: answer.body, as: UTF8.self))")
        }
        let bad = try await rawExchange(port: ingress.server.port, Self.post("/stores/bom%ZZtest/messages", header: Array("X: y".utf8)))
        #expect(bad.hasPrefix("HTTP/1.1 400"), "\(bad)")
        #expect(try await cluster.integer("SELECT count(*) FROM depot.messages") == 0)
    }

    @Test("store, processor and node names with a BOM, a right-to-left override, a zero-width space or ESC are refused by the tables, naming the character")
    func namesAreRefusedWhereDeclared() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let cases: [(String, String)] = [
            ("INSERT INTO depot.stores (name) VALUES (E'\\uFEFFbomtest')", "U+FEFF (BYTE ORDER MARK) at character 1"),
            ("UPDATE depot.stores SET name = E'ord\\u202Eers' WHERE name = 'orders'", "U+202E (RIGHT-TO-LEFT OVERRIDE) at character 4"),
            ("INSERT INTO depot.processors (name, kind, store, handler) VALUES (E'p\\u200Bq', 'sampling', 'orders', 'log')",
             "U+200B (ZERO WIDTH SPACE)"),
            ("INSERT INTO depot.nodes (name) VALUES (E'node\\u001B[31m')", "U+001B (ESCAPE)"),
            ("INSERT INTO depot.nodes (name) VALUES (E'node\\u2066a')", "U+2066 (LEFT-TO-RIGHT ISOLATE)"),
        ]
        for (statement, expected) in cases {
            do {
                try await cluster.sql(statement)
                Issue.record("accepted: \(statement)")
            } catch let error as PostgresError {
                #expect(error.message.contains(expected), "\(error.message)")
                #expect(error.sqlState?.code == "23514")
                #expect(!error.message.unicodeScalars.contains { [0xFEFF, 0x202E, 0x200B, 0x1B, 0x2066].contains($0.value) }, "the error echoes the character")
            }
        }
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('Zürich orders: café-Ω')")
        #expect(try await cluster.integer("SELECT count(*) FROM depot.stores") == 2)
    }

    @Test("depot node --name with a right-to-left override exits 64 with one line naming U+202E")
    func nodeNameIsRefused() async throws {
        let output = try await runProcess(depotExecutable, ["node", "--name", "node\u{202E}a"])
        #expect(output.status == 64)
        #expect(output.stderr.contains("U+202E (RIGHT-TO-LEFT OVERRIDE)"), "\(output.stderr)")
        #expect(output.stderr.split(separator: "\n").count == 1)
    }
}
