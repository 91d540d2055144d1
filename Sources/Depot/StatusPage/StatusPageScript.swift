/// The status page's script (`GET /status.js`): reads `status.json` every few seconds and
/// rebuilds the tables from it. Every name, reason and error goes into the page as text
/// (`textContent`, `append` of strings), never as markup, so nothing a store or an endpoint is
/// called or answers can add an element. A read that fails leaves the last data up under a
/// "stale since …" notice; script errors are listed in `#page-errors` rather than lost.
enum StatusPageScript {
    static let source = #"""
        "use strict";
        (() => {
          const SVG = "http://www.w3.org/2000/svg";
          const byId = (id) => document.getElementById(id);
          let refreshSeconds = 5;
          let lastGood = null;
          let refreshes = 0;

          function pageError(text) {
            const list = byId("page-errors");
            list.append(element("li", {}, text));
            list.hidden = false;
          }
          window.addEventListener("error", (event) => pageError("script error: " + event.message));
          window.addEventListener("unhandledrejection", (event) => pageError("script error: " + String(event.reason)));

          // An element with attributes and children; a string child becomes a text node.
          function element(tag, attributes, ...children) {
            const node = document.createElement(tag);
            for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
            node.append(...children.filter((child) => child !== null && child !== undefined));
            return node;
          }

          function cell(label, className, ...children) {
            const attributes = { "data-label": label };
            if (className) attributes.class = className;
            return element("td", attributes, ...children);
          }

          const numbers = new Intl.NumberFormat("en-US");
          const count = (n, estimated) => (estimated ? "≈" : "") + numbers.format(n);

          function age(seconds) {
            if (seconds === null || seconds === undefined) return "–";
            const s = Math.max(0, Math.round(seconds));
            if (s < 60) return s + " s";
            if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
            if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
            return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
          }

          const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString("en-GB") : "–");

          function fill(id, rows, columns, emptyText) {
            const body = byId(id);
            if (rows.length === 0) {
              body.replaceChildren(element("tr", {}, element("td", { colspan: String(columns), class: "empty" }, emptyText)));
            } else {
              body.replaceChildren(...rows);
            }
          }

          function storeRow(store) {
            const dead = store.dead_letters > 0 ? "num bad" : "num";
            return element("tr", { class: "store" },
              cell("Store", "name", store.store),
              cell("Kind", "", store.kind),
              cell("Ready", "num", count(store.ready, store.estimated)),
              cell("Delayed", "num", count(store.delayed, store.estimated)),
              cell("In flight", "num", count(store.in_flight, store.estimated)),
              cell("Dead letters", dead, count(store.dead_letters, store.estimated)),
              cell("Oldest ready", "num", age(store.oldest_ready_age_seconds)));
          }

          // Bars for one series, one per minute, scaled to the series' own highest minute.
          function plot(values, className, label) {
            const width = 4, gap = 1, height = 22;
            const highest = Math.max(1, ...values);
            const svg = document.createElementNS(SVG, "svg");
            svg.setAttribute("width", String(values.length * (width + gap)));
            svg.setAttribute("height", String(height));
            svg.setAttribute("role", "img");
            const total = values.reduce((sum, v) => sum + v, 0);
            svg.setAttribute("aria-label", label + " per minute: " + values.join(", "));
            const title = document.createElementNS(SVG, "title");
            title.textContent = label + " per minute, oldest first: " + values.join(", ");
            svg.append(title);
            values.forEach((value, index) => {
              const bar = Math.round((value / highest) * (height - 2)) + (value > 0 ? 2 : 0);
              const rect = document.createElementNS(SVG, "rect");
              rect.setAttribute("class", className);
              rect.setAttribute("x", String(index * (width + gap)));
              rect.setAttribute("y", String(height - Math.min(bar, height)));
              rect.setAttribute("width", String(width));
              rect.setAttribute("height", String(Math.min(bar, height)));
              svg.append(rect);
            });
            return element("span", { class: "plot" }, svg, label + " " + numbers.format(total));
          }

          function processorRow(processor) {
            const state = processor.active
              ? element("span", { class: "ok" }, "active")
              : element("span", {}, element("span", { class: "bad" }, "inactive"),
                  element("span", { class: "reason" }, processor.deactivated_reason || "no reason given"));
            const running = Object.entries(processor.nodes).map(([node, members]) => node + " ×" + members).join(", ");
            const minutes = processor.minutes;
            const error = processor.last_error
              ? element("span", {}, element("span", { class: "error" }, processor.last_error),
                  element("span", { class: "small" }, "at " + clock(processor.last_error_at)))
              : "–";
            return element("tr", { class: "processor" },
              cell("Processor", "name", processor.name, element("span", { class: "small" }, " " + processor.kind)),
              cell("Store", "", processor.store),
              cell("State", "", state),
              cell("Running on", "", running || (processor.active ? "no live node" : "–")),
              cell("Activity", "", element("span", { class: "plots" },
                plot(minutes.delivered, "delivered", "delivered"),
                plot(minutes.failed, "failed", "failed"),
                plot(minutes.dead_lettered, "dead", "dead-lettered"))),
              cell("Last error", "", error));
          }

          function nodeRow(node) {
            const runs = Object.entries(node.processors).map(([processor, members]) => processor + " ×" + members).join(", ");
            const where = [node.host, node.pid ? "pid " + node.pid : null, node.version].filter(Boolean).join(" · ");
            return element("tr", { class: "node" },
              cell("Node", "name", node.name),
              cell("State", "", element("span", { class: node.alive ? "ok" : "bad" }, node.alive ? "alive" : "not alive")),
              cell("Heartbeat", "num", age(node.heartbeat_age_seconds) + " ago"),
              cell("Runs", "", runs || "nothing"),
              cell("Host", "", where || "–"));
          }

          function render(doc) {
            byId("node").textContent = doc.node;
            byId("generated").textContent = clock(doc.generated_at);
            byId("refresh").textContent = String(doc.refresh_seconds);
            byId("minutes").textContent = String(doc.minutes);
            fill("stores", doc.stores.map(storeRow), 7, "No store is declared.");
            fill("processors", doc.processors.map(processorRow), 6, "No processor is defined.");
            fill("nodes", doc.nodes.map(nodeRow), 5, "No node is registered.");
            const notes = byId("notes");
            notes.replaceChildren(...doc.notes.map((note) => element("li", {}, note)));
            notes.hidden = doc.notes.length === 0;
          }

          // status.json beside the page, without the user and password a page opened as
          // http://user:token@host/ carries: fetch refuses such a URL. The browser still sends the
          // Basic credentials it was given for the page.
          function dataURL() {
            const url = new URL("status.json", window.location.href);
            url.username = "";
            url.password = "";
            return url.href;
          }

          async function read() {
            const abort = new AbortController();
            const timer = setTimeout(() => abort.abort(), 10000);
            try {
              const response = await fetch(dataURL(), { cache: "no-store", credentials: "same-origin", signal: abort.signal });
              if (!response.ok) {
                let reason = "";
                try { reason = (await response.json()).error || ""; } catch (ignored) { /* not JSON */ }
                throw new Error("status.json answered " + response.status + (reason ? ": " + reason : ""));
              }
              return await response.json();
            } finally {
              clearTimeout(timer);
            }
          }

          async function refresh() {
            try {
              const doc = await read();
              refreshSeconds = Math.max(1, Number(doc.refresh_seconds) || 5);
              render(doc);
              lastGood = new Date();
              refreshes += 1;
              byId("refreshes").textContent = String(refreshes);
              byId("stale").hidden = true;
            } catch (error) {
              const stale = byId("stale");
              const since = lastGood ? "Stale since " + lastGood.toLocaleTimeString("en-GB") : "No data yet";
              stale.textContent = since + ": " + (error && error.message ? error.message : String(error));
              stale.hidden = false;
            } finally {
              setTimeout(refresh, refreshSeconds * 1000);
            }
          }

          refresh();
        })();

        """#
}
