/// The status page's shell and style, served from the binary (no external assets). The shell
/// holds no data and no inline script or style, so the page can be sent with a strict
/// Content-Security-Policy; `StatusPageScript` fills it from `status.json`.
enum StatusPageHTML {
    /// `GET /` and `GET /status`. Relative links, so the page works behind a path prefix too.
    static let shell = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Depot status</title>
        <link rel="icon" href="data:,">
        <link rel="stylesheet" href="status.css">
        <script src="status.js" defer></script>
        </head>
        <body>
        <header>
        <h1>Depot status</h1>
        <p class="meta">Node <strong id="node">…</strong> · read at <span id="generated">…</span> ·
        refreshes every <span id="refresh">5</span> s · reads so far: <span id="refreshes">0</span></p>
        <p id="stale" class="stale" role="alert" hidden></p>
        <ul id="page-errors" class="stale" hidden></ul>
        <ul id="notes" class="notes" hidden></ul>
        </header>
        <main>
        <section>
        <h2>Stores</h2>
        <table>
        <thead><tr><th>Store</th><th>Kind</th><th class="num">Ready</th><th class="num">Delayed</th>
        <th class="num">In flight</th><th class="num">Dead letters</th><th class="num">Oldest ready</th></tr></thead>
        <tbody id="stores"><tr><td colspan="7" class="empty">Loading…</td></tr></tbody>
        </table>
        </section>
        <section>
        <h2>Processors</h2>
        <p class="legend">Per minute over the last <span id="minutes">15</span> minutes, oldest on the left:
        <span class="key delivered">delivered</span> <span class="key failed">failed</span>
        <span class="key dead">dead-lettered</span></p>
        <table>
        <thead><tr><th>Processor</th><th>Store</th><th>State</th><th>Running on</th><th>Activity</th>
        <th>Last error</th></tr></thead>
        <tbody id="processors"><tr><td colspan="6" class="empty">Loading…</td></tr></tbody>
        </table>
        </section>
        <section>
        <h2>Nodes</h2>
        <table>
        <thead><tr><th>Node</th><th>State</th><th class="num">Heartbeat</th><th>Runs</th><th>Host</th></tr></thead>
        <tbody id="nodes"><tr><td colspan="5" class="empty">Loading…</td></tr></tbody>
        </table>
        </section>
        </main>
        <noscript><p class="stale">This page needs JavaScript; the same data is at status.json.</p></noscript>
        </body>
        </html>

        """

    /// `GET /status.css`: readable on a phone (tables become cards under 720 px), light and dark.
    static let style = """
        :root { --fg: #1d2125; --muted: #5f6b76; --bg: #fff; --line: #d9dee3; --head: #f4f6f8;
                --ok: #1a7f37; --bad: #c0362c; --warn: #9a6700; --delivered: #2f81f7; --failed: #d4762c; --dead: #c0362c; }
        @media (prefers-color-scheme: dark) {
          :root { --fg: #e6edf3; --muted: #9aa6b2; --bg: #0d1117; --line: #30363d; --head: #161b22;
                  --ok: #3fb950; --bad: #f85149; --warn: #d29922; }
        }
        * { box-sizing: border-box; }
        body { margin: 0; padding: 1rem; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
               color: var(--fg); background: var(--bg); }
        h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
        h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
        .meta, .legend { color: var(--muted); margin: 0 0 .5rem; }
        .stale { color: var(--bad); font-weight: 600; border: 1px solid var(--bad); border-radius: 4px; padding: .4rem .6rem; }
        ul.stale { list-style: none; }
        .notes { color: var(--warn); }
        [hidden] { display: none !important; }
        table { border-collapse: collapse; width: 100%; }
        th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { background: var(--head); font-weight: 600; }
        .num { text-align: right; font-variant-numeric: tabular-nums; }
        .name { font-weight: 600; overflow-wrap: anywhere; min-width: 10em; }
        .empty { color: var(--muted); }
        .ok { color: var(--ok); font-weight: 600; }
        .bad { color: var(--bad); font-weight: 600; }
        .warn { color: var(--warn); font-weight: 600; }
        .reason, .error { display: block; overflow-wrap: anywhere; white-space: pre-wrap; }
        .error { color: var(--bad); }
        .small { color: var(--muted); font-size: .85em; }
        .name .small { display: block; font-weight: 400; }
        .plots { display: flex; flex-direction: column; gap: 3px; }
        .plot { display: flex; align-items: flex-end; gap: .4em; font-size: .8em; color: var(--muted); white-space: nowrap; }
        .plot svg { display: block; flex: none; border-bottom: 1px solid var(--line); }
        .plot rect.delivered, .key.delivered::before { fill: var(--delivered); background: var(--delivered); }
        .plot rect.failed, .key.failed::before { fill: var(--failed); background: var(--failed); }
        .plot rect.dead, .key.dead::before { fill: var(--dead); background: var(--dead); }
        .key::before { content: ""; display: inline-block; width: .7em; height: .7em; margin: 0 .25em 0 .5em; }
        @media (max-width: 720px) {
          body { padding: .5rem; }
          thead { display: none; }
          table, tbody, tr, td { display: block; width: 100%; }
          tr { border: 1px solid var(--line); border-radius: 6px; margin-bottom: .6rem; padding: .25rem 0; }
          td { border: 0; padding: .2rem .6rem; text-align: left; min-width: 0; }
          td[data-label]::before { content: attr(data-label) ": "; color: var(--muted); font-weight: 400; }
          td.num { display: inline-block; width: auto; text-align: left; }
        }

        """
}
