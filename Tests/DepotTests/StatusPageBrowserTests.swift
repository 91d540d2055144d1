import Depot
import DepotHTTP
import Foundation
import Postgres
import Testing
import TestSupport

/// The status page in a real headless Chromium: it loads with no console error, shows what the
/// database holds, keeps hostile names as text, updates itself, says when its data is stale,
/// and takes the node's token as the Basic password. Without Chromium these tests are skipped
/// with the reason, except in CI (`CI` set), where they run and fail saying how to install it.
@Suite("Status page in Chromium", .serialized,
       .enabled(if: HeadlessBrowser.testsEnabled, "no Chromium: apt-get install -y chromium (or set DEPOT_CHROMIUM); in CI these tests run and fail instead"))
struct StatusPageBrowserTests {
    /// Counts the page's reads of status.json and lets a test act before each is answered: change
    /// the database, or answer in the node's place.
    final class Reads: @unchecked Sendable {
        private let lock = NSLock()
        private var answered: [Data] = []
        var count: Int { lock.withLock { answered.count } }
        var first: Data? { lock.withLock { answered.first } }
        func record(_ body: Data) -> Int { lock.withLock { answered.append(body); return answered.count } }
    }

    /// Ingress in this process behind a server that calls `before(n)` ahead of the n-th read of
    /// status.json (1 for the first); a response it returns is sent instead of the node's.
    static func hookedIngress(_ cluster: Cluster, reads: Reads,
                              before: @escaping @Sendable (Int) async throws -> HTTPResponse?) throws -> (HTTPServer, String) {
        let pool = cluster.pool
        let service = IngressService(.init(node: "node-a"), producer: Producer(pool: pool, stores: StoreDirectory(pool: pool)),
                                     pool: pool, metrics: NodeMetrics())
        let server = HTTPServer(HTTPServer.Configuration(host: "127.0.0.1", port: 0)) { request in
            guard request.path == "/status.json" else { return await service.answer(request) }
            let replaced = try await before(reads.count + 1)
            let response = if let replaced { replaced } else { await service.answer(request) }
            _ = reads.record(response.body)
            return response
        }
        try server.start()
        return (server, "http://127.0.0.1:\(server.port)")
    }

    static let hostileStore = #"<b id="injected">x</b><script>document.title="pwned"</script>"#
    static let hostileReason = #"<img src=x onerror="document.title='pwned'"> endpoint answered 500"#

    @Test("the page loads with no console error, shows a store's count, a deactivation reason and hostile names as text, and updates after a change")
    func showsAndUpdates() async throws {
        let browser = try HeadlessBrowser.required()
        let cluster = try await Cluster.fresh()
        try await cluster.pool.query("INSERT INTO depot.stores (name) VALUES ('orders'), (\(Self.hostileStore))")
        try await cluster.pool.query("""
            INSERT INTO depot.processors (name, kind, store, handler, is_active, deactivated_reason)
            VALUES ('audit', 'sampling', 'orders', 'log', false, \(Self.hostileReason)), ('billing', 'sampling', 'orders', 'drop', true, NULL)
            """)
        // The plot's expected bars are this minute and the 14 before: seed them well before the next.
        try await awayFromMinuteBoundary(cluster.pool)
        try await cluster.sql("""
            INSERT INTO depot.nodes (name, heartbeat_at, heartbeat_interval_ms, processors) VALUES ('node-a', now(), 600000, '{"billing": 2}');
            INSERT INTO depot.processor_stats (processor, node, minute, delivered, failed)
            SELECT 'billing', 'node-a', date_trunc('minute', now()) - m * interval '1 minute', m + 1, m % 2 FROM generate_series(0, 14) m;
            """)
        _ = try await cluster.storeTexts("orders", count: 3)
        let reads = Reads()
        let (server, base) = try Self.hookedIngress(cluster, reads: reads) { read in
            // The page has shown the first answer; change what the next one will say.
            if read == 2 {
                _ = try await cluster.storeTexts("orders", count: 4)
                try await ProcessorAdmin(pool: cluster.pool).deactivate("billing", reason: "paused for the test <i>now</i>")
            }
            return nil
        }
        defer { server.stop() }

        let page = try await browser.load(base + "/status", virtualMilliseconds: 12_000)

        #expect(page.console.isEmpty, "console: \(page.console)")
        #expect(page.inner(id: "page-errors") == "", "script errors: \(page.inner(id: "page-errors") ?? "none")")
        #expect(page.isHidden(id: "stale"), "stale notice: \(page.inner(id: "stale") ?? "")")
        let first = String(decoding: try #require(reads.first), as: UTF8.self)
        #expect(first.contains(#""ready":3"#) && !first.contains("paused for the test"), "the first read showed the state before the change")
        #expect(reads.count >= 2)
        #expect(Int(page.inner(id: "refreshes") ?? "") ?? 0 >= 2, "the page counted its reads")

        let orders = try #require(page.row("store", named: "orders"), "\(page.dom)")
        #expect(orders[2] == "7", "ready after the change: \(orders)")
        let billing = try #require(page.row("processor", named: "billing sampling"))
        #expect(billing[2] == "inactivepaused for the test <i>now</i>", "\(billing)")
        let audit = try #require(page.row("processor", named: "audit sampling"))
        #expect(audit[2] == "inactive" + Self.hostileReason, "\(audit)")
        #expect(page.row("store", named: Self.hostileStore) != nil, "the hostile name is shown as text")
        #expect(page.row("node", named: "node-a")?[1] == "alive")

        // The names and reasons made no element: one script (the page's own), no <b>, <img> or <i>.
        #expect(page.dom.matches(of: /<script/).count == 1)
        #expect(!page.dom.contains("<b id=") && !page.dom.contains("<img") && !page.dom.contains("<i>"))
        #expect(page.dom.contains("<title>Depot status</title>"))
        // Billing's plot: 15 bars a series, its delivered counts 15 down to 1, oldest first.
        let billingRow = try #require(page.dom.firstMatch(of: /<tr class="processor"><td data-label="Processor" class="name">billing.*?<\/tr>/))
        #expect(billingRow.output.matches(of: /<rect class="delivered"/).count == 15)
        #expect(billingRow.output.contains("delivered per minute, oldest first: 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1"))
    }

    @Test("when status.json stops answering, the page keeps its data under a visible 'stale since' notice, without a script error")
    func staleNotice() async throws {
        let browser = try HeadlessBrowser.required()
        let cluster = try await Cluster.fresh()
        try await cluster.sql("INSERT INTO depot.stores (name) VALUES ('orders')")
        let reads = Reads()
        let (server, base) = try Self.hookedIngress(cluster, reads: reads) { read in
            read == 1 ? nil : HTTPError(503, "database unreachable: connection refused").response
        }
        defer { server.stop() }

        let page = try await browser.load(base + "/", virtualMilliseconds: 8_000)

        #expect(reads.count >= 2)
        #expect(!page.isHidden(id: "stale"))
        let notice = HeadlessBrowser.Page.text(ofHTML: page.inner(id: "stale") ?? "")
        #expect(notice.hasPrefix("Stale since ") && notice.hasSuffix("status.json answered 503: database unreachable: connection refused"),
                "\(notice)")
        #expect(page.row("store", named: "orders") != nil, "the last data stays up")
        #expect(page.inner(id: "page-errors") == "")
        #expect(page.console.isEmpty, "console: \(page.console)")
    }

    @Test("with DEPOT_HTTP_TOKEN, Chromium without it sees nothing; given it as the Basic password it shows the page (screenshot saved)")
    func tokenAndScreenshot() async throws {
        let browser = try HeadlessBrowser.required()
        let cluster = try await Cluster.fresh()
        try await Self.demoRows(cluster)
        let ingress = try cluster.startIngress(node: "node-a", token: "s3cret-token")
        defer { ingress.server.stop() }
        let port = ingress.server.port

        // Headless Chromium cancels the Basic prompt: nothing of the page, no data.
        let refused = try await browser.load("http://127.0.0.1:\(port)/status", virtualMilliseconds: 2_000)
        #expect(!refused.dom.contains("Depot status") && refused.rows("store").isEmpty, "\(refused.dom)")

        let url = "http://ops:s3cret-token@127.0.0.1:\(port)/status"
        let page = try await browser.load(url, virtualMilliseconds: 2_000)
        #expect(page.console.isEmpty, "console: \(page.console)")
        #expect(page.isHidden(id: "stale"), "\(page.inner(id: "stale") ?? "")")
        #expect(page.row("store", named: "orders")?[2] == "1,204", "\(page.rows("store"))")
        #expect(page.row("processor", named: "invoices-to-erp forwarding")?[2].hasPrefix("inactiveendpoint erp answered 503") == true)

        // DEPOT_STATUS_SCREENSHOT=docs/status-page.png keeps it for the README.
        let path = ProcessInfo.processInfo.environment["DEPOT_STATUS_SCREENSHOT"]
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("depot-status-\(UUID().uuidString.prefix(8)).png").path
        try? FileManager.default.removeItem(atPath: path)
        let console = try await browser.screenshot(url, to: path, windowSize: "1100,900")
        #expect(console.isEmpty, "console: \(console)")
        let png = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 10_000, "a PNG of \(png.count) bytes at \(path)")
        print("StatusPageBrowserTests: screenshot at \(path)")
    }

    /// A cluster as an operator might find it: backlogs, a dead letter, a failing processor.
    static func demoRows(_ cluster: Cluster) async throws {
        try await cluster.sql("""
            INSERT INTO depot.stores (name) VALUES ('orders'), ('invoices');
            INSERT INTO depot.stores (name, kind) VALUES ('orders-journal', 'journal');
            INSERT INTO depot.endpoints (name, url) VALUES ('shop', 'http://shop.internal/orders'), ('erp', 'http://erp.internal/in');
            INSERT INTO depot.processors (name, kind, store, target_endpoint, member_count) VALUES ('orders-to-shop', 'forwarding', 'orders', 'shop', 2);
            INSERT INTO depot.processors (name, kind, store, target_endpoint, is_active, deactivated_reason)
            VALUES ('invoices-to-erp', 'forwarding', 'invoices', 'erp', false,
                    'endpoint erp answered 503 on 4 attempts; max_delivery_drop is off, so the processor stopped with the message at the head');
            INSERT INTO depot.processors (name, kind, store, handler) VALUES ('audit-sample', 'sampling', 'orders', 'log');
            INSERT INTO depot.nodes (name, host, pid, version, heartbeat_at, heartbeat_interval_ms, processors) VALUES
                ('node-a', 'worker-1', 4121, '0.1.0', now() - interval '1 second', 600000, '{"orders-to-shop": 2, "audit-sample": 1}'),
                ('node-b', 'worker-2', 3980, '0.1.0', now() - interval '2 seconds', 600000, '{"orders-to-shop": 2}'),
                ('node-c', 'worker-3', 4410, '0.1.0', now() - interval '4 minutes', 5000, '{}');
            INSERT INTO depot.processor_stats (processor, node, minute, delivered, failed, dead_lettered, last_error, last_error_at)
            SELECT 'orders-to-shop', 'node-a', date_trunc('minute', now()) - m * interval '1 minute',
                   900 + (m * 37) % 250, (m * 7) % 5 / 3, CASE WHEN m = 6 THEN 1 ELSE 0 END,
                   CASE WHEN m = 6 THEN 'endpoint shop answered 502 Bad Gateway' END, CASE WHEN m = 6 THEN now() - interval '6 minutes' END
            FROM generate_series(0, 14) m;
            INSERT INTO depot.processor_stats (processor, node, minute, delivered, failed, last_error, last_error_at)
            SELECT 'invoices-to-erp', 'node-b', date_trunc('minute', now()) - m * interval '1 minute',
                   CASE WHEN m > 4 THEN 40 + m ELSE 0 END, CASE WHEN m BETWEEN 3 AND 5 THEN 4 ELSE 0 END,
                   CASE WHEN m = 3 THEN 'endpoint erp answered 503 Service Unavailable' END, CASE WHEN m = 3 THEN now() - interval '3 minutes' END
            FROM generate_series(0, 14) m;
            INSERT INTO depot.processor_stats (processor, node, minute, delivered)
            SELECT 'audit-sample', 'node-a', date_trunc('minute', now()) - m * interval '1 minute', 20 + (m * 13) % 9 FROM generate_series(0, 14) m;
            """)
        _ = try await cluster.storeTexts("orders", count: 1_204 + 35 + 12)
        _ = try await cluster.storeTexts("invoices", count: 318)
        try await cluster.sql("""
            UPDATE depot.messages SET created_at = now() - interval '95 seconds' WHERE store = 'orders';
            UPDATE depot.messages SET created_at = now() - interval '14 minutes' WHERE store = 'invoices';
            UPDATE depot.messages SET available_at = now() + interval '1 hour'
            WHERE id IN (SELECT id FROM depot.messages WHERE store = 'orders' ORDER BY id LIMIT 35);
            UPDATE depot.messages SET locked_by = 'node-a', locked_until = now() + interval '30 seconds'
            WHERE id IN (SELECT id FROM depot.messages WHERE store = 'orders' AND available_at <= now() ORDER BY id LIMIT 12);
            INSERT INTO depot.dead_letters (id, store, payload, created_at, attempts, reason, last_error, status_code, processor, node)
            VALUES (gen_random_uuid(), 'orders', 'x', now() - interval '6 minutes', 4, 'max_delivery_attempts',
                    'endpoint shop answered 502 Bad Gateway', 502, 'orders-to-shop', 'node-a');
            """)
    }
}
