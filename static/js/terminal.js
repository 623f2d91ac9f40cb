/* The terminal's live layer: one websocket per page for quotes, a polling fallback while it is down,
 * price flashes, and keyboard shortcuts. Plain script, no framework: the server renders every fragment. */
(function () {
  "use strict";

  var RECONNECT_MIN_MS = 1000, RECONNECT_MAX_MS = 15000, POLL_MS = 2000;

  function numeric(text) {
    var n = parseFloat(String(text).replace(/[^0-9.\-]/g, ""));
    return isNaN(n) ? null : n;
  }

  /* Swap each element of an HTML frame into the element with the same id, flashing price moves. */
  function applyFragments(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    template.content.querySelectorAll("[id]").forEach(function (incoming) {
      var current = document.getElementById(incoming.id);
      if (!current) return;
      var before = numeric(current.textContent), after = numeric(incoming.textContent);
      incoming.removeAttribute("hx-swap-oob");
      current.replaceWith(incoming);
      if (incoming.classList.contains("ltp") && before !== null && after !== null && before !== after) {
        var cell = incoming.closest("td") || incoming;
        cell.classList.remove("flash-up", "flash-down");
        void cell.offsetWidth; // restart the animation
        cell.classList.add(after > before ? "flash-up" : "flash-down");
      }
    });
  }

  function watchedInstruments() {
    var panel = document.getElementById("watchlist");
    if (!panel || !panel.dataset.instruments) return [];
    return panel.dataset.instruments.split(",").filter(Boolean).map(Number);
  }

  function LiveQuotes(statusEl) {
    this.statusEl = statusEl;
    this.socket = null;
    this.subscribed = new Set();
    this.delay = RECONNECT_MIN_MS;
    this.pollTimer = null;
  }

  LiveQuotes.prototype.setState = function (state, label) {
    if (!this.statusEl) return;
    this.statusEl.dataset.state = state;
    this.statusEl.textContent = label;
  };

  LiveQuotes.prototype.connect = function () {
    var self = this, scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/ws/ticks/?format=html");
    this.socket = socket;
    socket.onopen = function () {
      self.delay = RECONNECT_MIN_MS;
      self.subscribed = new Set();
      self.stopPolling();
      self.setState("live", "Live");
      self.sync();
    };
    socket.onmessage = function (event) {
      if (typeof event.data === "string" && event.data.charAt(0) === "<") applyFragments(event.data);
    };
    socket.onclose = function () {
      self.socket = null;
      self.setState("polling", "Reconnecting… (polling)");
      self.startPolling();
      setTimeout(function () { self.connect(); }, self.delay);
      self.delay = Math.min(self.delay * 2, RECONNECT_MAX_MS);
    };
  };

  /* Subscribe to what the watchlist shows now and drop what it no longer shows. */
  LiveQuotes.prototype.sync = function () {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return;
    var wanted = new Set(watchedInstruments()), self = this;
    var add = Array.from(wanted).filter(function (id) { return !self.subscribed.has(id); });
    var drop = Array.from(this.subscribed).filter(function (id) { return !wanted.has(id); });
    if (add.length) this.socket.send(JSON.stringify({ action: "subscribe", instruments: add }));
    if (drop.length) this.socket.send(JSON.stringify({ action: "unsubscribe", instruments: drop }));
    this.subscribed = wanted;
  };

  LiveQuotes.prototype.startPolling = function () {
    if (this.pollTimer) return;
    this.pollTimer = setInterval(function () {
      var panel = document.getElementById("watchlist");
      if (panel && panel.dataset.pollUrl && window.htmx && !panel.contains(document.activeElement)) {
        window.htmx.ajax("GET", panel.dataset.pollUrl, { target: "#watchlist", swap: "outerHTML" });
      }
    }, POLL_MS);
  };

  LiveQuotes.prototype.stopPolling = function () {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  };

  /* Keyboard shortcuts as on the common Indian terminals: B buy, S sell, Esc close, / search. */
  function onKey(event) {
    var target = event.target, typing = target && (target.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName));
    if (event.key === "Escape") {
      document.dispatchEvent(new CustomEvent("terminal:close-ticket"));
      if (typing) target.blur();
      return;
    }
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "/") {
      var search = document.getElementById("symbol-search");
      if (search) { event.preventDefault(); search.focus(); }
    } else if (event.key === "b" || event.key === "B" || event.key === "s" || event.key === "S") {
      var row = document.activeElement && document.activeElement.closest("[data-instrument]");
      document.dispatchEvent(new CustomEvent("terminal:open-ticket", {
        detail: { side: event.key.toUpperCase() === "B" ? "BUY" : "SELL", instrument: row ? row.dataset.instrument : null }
      }));
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.addEventListener("keydown", onKey);
    if (!document.getElementById("watchlist")) return;
    var live = new LiveQuotes(document.getElementById("live-status"));
    window.terminalLive = live;
    live.connect();
    document.body.addEventListener("htmx:afterSwap", function () { live.sync(); });
  });

  window.terminalApplyFragments = applyFragments;
})();
