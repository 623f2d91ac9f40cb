/* Market depth, live: the panels the page shows (under the ticket, under an expanded watchlist row) are
 * kept current by one depth socket (/ws/ticks/?format=depth), which sends each changed instrument's panel
 * rendered by the server. Every panel of that instrument on the page is replaced (data-depth), so the
 * ticket and a row may show the same one. The socket opens only while some panel is showing. */
(function () {
  "use strict";

  var RECONNECT_MIN_MS = 1000, RECONNECT_MAX_MS = 15000, FINAL = { 4401: true, 4429: true };
  var socket = null, subscribed = new Set(), delay = RECONNECT_MIN_MS, ended = false;

  /* The instruments whose depth panel is showing now (a closed dialog's panel is not). */
  function shown() {
    var ids = new Set();
    document.querySelectorAll(".depth[data-depth]").forEach(function (panel) {
      if (panel.getClientRects().length) ids.add(Number(panel.dataset.depth));
    });
    return ids;
  }

  function apply(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    Array.prototype.slice.call(template.content.children).forEach(function (incoming) {
      var id = incoming.dataset && incoming.dataset.depth;
      if (!id) return;
      document.querySelectorAll('.depth[data-depth="' + id + '"]').forEach(function (current) {
        current.replaceWith(incoming.cloneNode(true));
      });
    });
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/ticks/?format=depth");
    subscribed = new Set();
    socket.onopen = function () { delay = RECONNECT_MIN_MS; sync(); };
    socket.onmessage = function (event) {
      if (typeof event.data === "string" && event.data.charAt(0) === "<") apply(event.data);
    };
    socket.onclose = function (event) {
      socket = null;
      if (FINAL[event.code]) { ended = true; return; }
      if (shown().size) setTimeout(sync, delay);
      delay = Math.min(delay * 2, RECONNECT_MAX_MS);
    };
  }

  /* Subscribe to the panels showing, drop the others; open the socket on the first panel. */
  function sync() {
    if (ended) return;
    var wanted = shown();
    if (!socket) { if (wanted.size) connect(); return; }
    if (socket.readyState !== WebSocket.OPEN) return;
    var add = Array.from(wanted).filter(function (id) { return !subscribed.has(id); });
    var drop = Array.from(subscribed).filter(function (id) { return !wanted.has(id); });
    if (add.length) socket.send(JSON.stringify({ action: "subscribe", instruments: add }));
    if (drop.length) socket.send(JSON.stringify({ action: "unsubscribe", instruments: drop }));
    subscribed = wanted;
  }

  /* A watchlist row's depth: the button inserts a row under it that loads the panel, or removes it. */
  function toggleRow(button) {
    var row = button.closest("tr[data-instrument]"), next = row.nextElementSibling;
    if (next && next.classList.contains("depth-row")) {
      next.remove();
      button.setAttribute("aria-expanded", "false");
      sync();
      return;
    }
    var depthRow = document.createElement("tr"), cell = document.createElement("td"), loader = document.createElement("div");
    depthRow.className = "depth-row";
    cell.colSpan = row.children.length;
    loader.setAttribute("hx-get", button.dataset.depthUrl);
    loader.setAttribute("hx-trigger", "load");
    loader.setAttribute("hx-swap", "outerHTML");
    loader.className = "muted";
    loader.textContent = "Loading depth…";
    cell.appendChild(loader);
    depthRow.appendChild(cell);
    row.after(depthRow);
    button.setAttribute("aria-expanded", "true");
    if (window.htmx) window.htmx.process(depthRow);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-depth-url]");
      if (button) toggleRow(button);
    });
    document.body.addEventListener("htmx:afterSettle", sync);
    document.addEventListener("close", sync, true); // the ticket's dialog closed: its panel is hidden
    sync();
  });
})();
