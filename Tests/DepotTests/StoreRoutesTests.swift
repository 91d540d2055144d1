@testable import Depot
import Foundation
import Testing
import TestSupport

/// How a producer finds a store's row: every row read at once while they are stale, one row by
/// its key for a name the fresh rows lack.
@Suite("Store routes")
struct StoreRoutesTests {
    @Test("a name the fresh rows lack is looked up alone: a store declared since is found, the other rows are not read again, an unknown name is not kept")
    func unknownNameIsOneLookup() async throws {
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('a')")
        let routes = StoreRoutes(pool: cluster.pool, file: nil, refreshEvery: .seconds(600))
        #expect(try await routes.definition(of: "a").description == nil)  // the first read takes every row

        try await cluster.sql("UPDATE depot.stores SET description = 'changed' WHERE name = 'a'; INSERT INTO depot.stores (name) VALUES ('b')")
        #expect(try await routes.definition(of: "b").name == "b")
        #expect(routes.cached("b")?.name == "b", "a store found alone joins the rows")
        #expect(routes.cached("a")?.description == nil, "finding b read a's row again: every row was read")

        let error = await #expect(throws: StoreError.self) { try await routes.definition(of: "nobody-declared-this") }
        #expect(error?.code == .undeclaredStore)
        #expect(routes.cached("nobody-declared-this") == nil)
    }
}
