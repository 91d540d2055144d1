import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Debian's `chromium` run headless, for the status page's tests: the DOM after the page's
/// script ran (`--dump-dom`), the console lines it logged, and screenshots. Each run gets a
/// profile folder of its own and is killed after 60 s.
public struct HeadlessBrowser: Sendable {
    public let executable: String

    /// How to get one, for the message of a test that needs it.
    public static let installHint = "the status page's browser tests need Chromium: apt-get install -y chromium "
        + "(scripts/test installs it when run as root), or set DEPOT_CHROMIUM to a Chromium or Chrome binary"

    /// `$DEPOT_CHROMIUM`, else `chromium` or `chromium-browser` on PATH; nil when there is none.
    public static func find() -> HeadlessBrowser? {
        let environment = ProcessInfo.processInfo.environment
        if let chosen = environment["DEPOT_CHROMIUM"], !chosen.isEmpty {
            return FileManager.default.isExecutableFile(atPath: chosen) ? HeadlessBrowser(executable: chosen) : nil
        }
        for folder in (environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            for name in ["chromium", "chromium-browser"] where FileManager.default.isExecutableFile(atPath: "\(folder)/\(name)") {
                return HeadlessBrowser(executable: "\(folder)/\(name)")
            }
        }
        return nil
    }

    /// Whether the browser tests run: when a browser is found, and always in CI (`CI` set), where
    /// a missing browser fails them rather than skipping them.
    public static var testsEnabled: Bool { find() != nil || ProcessInfo.processInfo.environment["CI"] != nil }

    /// The browser, or an error saying how to install it.
    public static func required() throws -> HeadlessBrowser {
        guard let browser = find() else { throw Failure(description: "no Chromium found; " + installHint) }
        return browser
    }

    struct Failure: Error, CustomStringConvertible { let description: String }

    /// A page as the browser left it.
    public struct Page: Sendable {
        /// The serialised DOM.
        public let dom: String
        /// The page's console messages (Chromium's `CONSOLE` log lines): errors, CSP violations.
        public let console: [String]
    }

    /// Opens `url`, lets the page run for `virtualMilliseconds` of virtual time (timers run ahead,
    /// network waits are real), and returns its DOM and console lines.
    public func load(_ url: String, virtualMilliseconds: Int = 12_000, windowSize: String = "1280,900") async throws -> Page {
        let (stdout, stderr) = try await run(["--virtual-time-budget=\(virtualMilliseconds)", "--window-size=\(windowSize)",
                                              "--dump-dom", url])
        return Page(dom: stdout, console: Self.consoleLines(stderr))
    }

    /// Saves a PNG of `url` after `virtualMilliseconds` of virtual time; returns the console lines.
    @discardableResult
    public func screenshot(_ url: String, to path: String, windowSize: String = "1100,800",
                           virtualMilliseconds: Int = 3_000) async throws -> [String] {
        let (_, stderr) = try await run(["--virtual-time-budget=\(virtualMilliseconds)", "--window-size=\(windowSize)",
                                         "--hide-scrollbars", "--screenshot=\(path)", url])
        return Self.consoleLines(stderr)
    }

    private func run(_ arguments: [String]) async throws -> (String, String) {
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("depot-chromium-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let child = try ChildProcess(executable, ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                                  "--user-data-dir=\(profile)", "--enable-logging=stderr", "--v=0"] + arguments)
        defer { child.cleanUp() }
        let watchdog = Task {
            try await Task.sleep(for: .seconds(60))
            child.signal(SIGKILL)
        }
        let status = await child.wait()
        watchdog.cancel()
        guard status == 0 else {
            throw Failure(description: "\(executable) \(arguments.joined(separator: " ")) exited with \(status): \(child.stderr.suffix(2000))")
        }
        return (child.stdout, child.stderr)
    }

    static func consoleLines(_ log: String) -> [String] {
        log.split(separator: "\n").filter { $0.contains(":CONSOLE") }.map(String.init)
    }
}

extension HeadlessBrowser.Page {
    /// The text of each cell of each `<tr class="rowClass">`, tags removed and entities decoded.
    public func rows(_ rowClass: String) -> [[String]] {
        dom.matches(of: try! Regex("<tr class=\"\(rowClass)\">(.*?)</tr>").dotMatchesNewlines()).map { row in
            let inner = String(row.output[1].substring ?? "")
            return inner.matches(of: try! Regex("<td[^>]*>(.*?)</td>").dotMatchesNewlines()).map {
                Self.text(ofHTML: String($0.output[1].substring ?? ""))
            }
        }
    }

    /// The first row of class `rowClass` whose first cell is `name` (a store, processor or node).
    public func row(_ rowClass: String, named name: String) -> [String]? {
        rows(rowClass).first { $0.first == name }
    }

    /// The inner HTML of the element with `id`: up to its first closing tag.
    public func inner(id: String) -> String? {
        guard let match = dom.firstMatch(of: try! Regex("id=\"\(id)\"[^>]*>(.*?)</").dotMatchesNewlines()) else { return nil }
        return String(match.output[1].substring ?? "")
    }

    /// Whether the element with `id` carries the `hidden` attribute.
    public func isHidden(id: String) -> Bool {
        dom.firstMatch(of: try! Regex("<[a-z]+ id=\"\(id)\"[^>]* hidden")) != nil
    }

    /// Text of an HTML fragment: tags dropped, the entities a serialiser writes decoded.
    public static func text(ofHTML html: String) -> String {
        html.replacing(try! Regex("<[^>]*>"), with: "")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&nbsp;", with: "\u{A0}").replacingOccurrences(of: "&amp;", with: "&")
    }
}
