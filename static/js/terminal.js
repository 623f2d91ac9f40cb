/* The terminal's live layer: one websocket per page for quotes, a polling fallback while it is down,
 * price flashes, and keyboard shortcuts. Plain script, no framework: the server renders every fragment. */
(function () {
  "use strict";

  var RECONNECT_MIN_MS = 1000, RECONNECT_MAX_MS = 15000, POLL_MS = 2000, STABLE_MS = 10000;

  /* Close codes after which reconnecting cannot help (infra.sockets): the session ended (4401) or
   * the user holds as many sockets as allowed (4429). Say so instead of retrying for ever. */
  var FINAL_CLOSES = {
    4401: "Signed out: reload the page to sign in again",
    4429: "Too many open terminal windows: close one, then reload"
  };

  function socketEnded(code) {
    var status = document.getElementById("live-status");
    if (status) {
      status.dataset.state = "ended";
      status.textContent = FINAL_CLOSES[code];
    }
  }

  function numeric(text) {
    var n = parseFloat(String(text).replace(/[^0-9.\-]/g, ""));
    return isNaN(n) ? null : n;
  }

  /* Where a row the page does not show yet goes: new orders and trades on top, positions below; an
   * alert's toast, its firing and its row (alerts/_panel.html). The first prefix that matches wins. */
  var NEW_ROWS = { "order-": ["orders-body", "afterbegin"], "trade-": ["trades-body", "afterbegin"],
                   "position-": ["positions-body", "beforeend"], "firing-": ["firings-body", "afterbegin"],
                   "alert-toast-": ["alert-toasts", "beforeend"], "alert-": ["alerts-body", "afterbegin"] };

  function insertNewRow(incoming) {
    for (var prefix in NEW_ROWS) {
      if (incoming.id.indexOf(prefix) === 0) {
        var body = document.getElementById(NEW_ROWS[prefix][0]);
        if (body) {
          incoming.removeAttribute("hx-swap-oob");
          body.insertAdjacentElement(NEW_ROWS[prefix][1], incoming);
          var empty = body.closest("section") && body.closest("section").querySelector(".empty");
          if (empty) empty.remove();
          if (window.htmx) window.htmx.process(incoming);
        }
        return;
      }
    }
  }

  /* This page's CSRF token: the one htmx sends with every request (hx-headers on body). */
  function pageCsrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  /* A pushed fragment is rendered once for all its recipients, without a request, so its forms carry
   * no CSRF token: give them this page's (tokens belong to the browser's cookie, not to the user), so
   * that they also work as plain POSTs. Only forms posting to this site get it. */
  function giveCsrfToken(element) {
    var forms = element.querySelectorAll("form[method=post]");
    if (!forms.length) return;
    var token = pageCsrfToken();
    if (!token) return;
    forms.forEach(function (form) {
      if (new URL(form.getAttribute("action") || "", location.href).origin !== location.origin) return;
      var input = form.querySelector("input[name=csrfmiddlewaretoken]");
      if (input && input.value) return;
      if (!input) {
        input = document.createElement("input");
        input.type = "hidden";
        input.name = "csrfmiddlewaretoken";
        form.prepend(input);
      }
      input.value = token;
    });
  }

  /* Swap each top-level element of an HTML frame into the element with the same id (inserting new
   * order, trade and position rows), flashing price moves. */
  function applyFragments(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    Array.prototype.slice.call(template.content.children).forEach(function (incoming) {
      if (!incoming.id) return;
      giveCsrfToken(incoming);
      var current = document.getElementById(incoming.id);
      if (!current) { insertNewRow(incoming); return; }
      var before = numeric(current.textContent), after = numeric(incoming.textContent);
      incoming.removeAttribute("hx-swap-oob");
      current.replaceWith(incoming);
      if (window.htmx && incoming.querySelector("[hx-post],[hx-get]")) window.htmx.process(incoming);
      if (incoming.classList.contains("ltp") && before !== null && after !== null && before !== after) {
        var cell = incoming.closest("td") || incoming;
        cell.classList.remove("flash-up", "flash-down");
        void cell.offsetWidth; // restart the animation
        cell.classList.add(after > before ? "flash-up" : "flash-down");
      }
    });
  }

  /* The instrument ids a page element lists in its data-instruments attribute. */
  function instrumentsOf(elementId) {
    var element = document.getElementById(elementId);
    if (!element || !element.dataset.instruments) return [];
    return element.dataset.instruments.split(",").filter(Boolean).map(Number);
  }

  /* One quotes socket for a page: it subscribes to what ``options.instruments()`` lists, swaps the
   * fragments it receives, and while it is down runs ``options.poll`` (if any) every POLL_MS. */
  function LiveQuotes(statusEl, options) {
    this.statusEl = statusEl;
    this.instruments = options.instruments;
    this.poll = options.poll || null;
    this.downLabel = options.downLabel || "Reconnecting… (polling)";
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
    var stable = null;
    socket.onopen = function () {
      // The backoff resets only once the socket has stayed up: one that opens and is closed at once
      // (refused, or the server restarting) must not be retried at the shortest delay for ever.
      stable = setTimeout(function () { self.delay = RECONNECT_MIN_MS; }, STABLE_MS);
      self.subscribed = new Set();
      self.stopPolling();
      self.setState("live", "Live");
      self.sync();
    };
    socket.onmessage = function (event) {
      if (typeof event.data === "string" && event.data.charAt(0) === "<") applyFragments(event.data);
    };
    socket.onclose = function (event) {
      clearTimeout(stable);
      self.socket = null;
      if (FINAL_CLOSES[event.code]) {
        socketEnded(event.code);
        return;
      }
      self.setState("polling", self.downLabel);
      self.startPolling();
      setTimeout(function () { self.connect(); }, self.delay);
      self.delay = Math.min(self.delay * 2, RECONNECT_MAX_MS);
    };
  };

  /* Subscribe to what the page shows now and drop what it no longer shows. */
  LiveQuotes.prototype.sync = function () {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return;
    var wanted = new Set(this.instruments()), self = this;
    var add = Array.from(wanted).filter(function (id) { return !self.subscribed.has(id); });
    var drop = Array.from(this.subscribed).filter(function (id) { return !wanted.has(id); });
    if (add.length) this.socket.send(JSON.stringify({ action: "subscribe", instruments: add }));
    if (drop.length) this.socket.send(JSON.stringify({ action: "unsubscribe", instruments: drop }));
    this.subscribed = wanted;
  };

  LiveQuotes.prototype.startPolling = function () {
    if (this.pollTimer || !this.poll) return;
    this.pollTimer = setInterval(this.poll, POLL_MS);
  };

  /* The dashboard's fallback: re-render the watchlist (unless the user is typing in it). */
  function pollWatchlist() {
    var panel = document.getElementById("watchlist");
    if (panel && panel.dataset.pollUrl && window.htmx && !panel.contains(document.activeElement)) {
      window.htmx.ajax("GET", panel.dataset.pollUrl, { target: "#watchlist", swap: "outerHTML" });
    }
  }

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
    if (typing || event.ctrlKey || event.metaKey) return;
    if (event.key === "ArrowUp" || event.key === "ArrowDown") {
      if (moveSelection(event.key === "ArrowUp" ? -1 : 1, event.altKey)) event.preventDefault();
      return;
    }
    if (event.altKey) return;
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

  /* The watchlist's keyboard selection: arrow keys move the focus ring (and aria-selected) over the
   * rows; with Alt the selected row itself moves up or down (the server keeps the order). */
  function watchlistRows() {
    return Array.prototype.slice.call(document.querySelectorAll("#watchlist tr[data-instrument]"));
  }

  function selectRow(row) {
    watchlistRows().forEach(function (other) {
      other.setAttribute("aria-selected", other === row ? "true" : "false");
      other.classList.toggle("selected", other === row);
    });
    if (row) row.focus();
  }

  function moveSelection(step, moveRow) {
    var rows = watchlistRows();
    if (!rows.length) return false;
    var current = document.activeElement && document.activeElement.closest && document.activeElement.closest("#watchlist tr[data-instrument]");
    current = current || document.querySelector("#watchlist tr[data-instrument][aria-selected=true]");
    if (moveRow) {
      if (!current || !window.htmx) return false;
      var id = current.dataset.instrument;
      window.htmx.ajax("POST", current.dataset.moveUrl, {
        target: "#watchlist", swap: "outerHTML", values: { direction: step < 0 ? "up" : "down" }
      }).then(function () { selectRow(document.getElementById("wl-row-" + id)); });
      return true;
    }
    var index = current ? rows.indexOf(current) + step : (step > 0 ? 0 : rows.length - 1);
    selectRow(rows[Math.max(0, Math.min(rows.length - 1, index))]);
    return true;
  }

  /* After the panel is re-rendered (a poll, an add), keep the selected row selected. */
  function restoreSelection(selectedId, hadFocus) {
    if (!selectedId) return;
    var row = document.getElementById("wl-row-" + selectedId);
    if (!row) return;
    row.setAttribute("aria-selected", "true");
    row.classList.add("selected");
    if (hadFocus) row.focus();
  }

  /* The per-user socket: order, trade and position changes as the rows the books show. The server
   * numbers each user's changes (infra.push's journal) and tells the page, in a {"type": "seq"} frame,
   * the number up to which it holds every one; a reconnecting socket (after a network drop or a web
   * worker's death, to whichever worker answers) sends it as ?since= and first gets the current state
   * of every change after it, so the books show the truth again. */
  var userSeq = null;

  /* The number the page was rendered at (the trading panel's data-push-seq), read before its books. */
  function pageSeq() {
    var trading = document.getElementById("trading");
    var seq = trading && trading.dataset.pushSeq !== undefined ? parseInt(trading.dataset.pushSeq, 10) : NaN;
    return isNaN(seq) ? null : seq;
  }

  /* The page was away longer than the server's journal keeps: reload the books it shows. */
  function resyncBooks() {
    if (!window.htmx) return;
    var orders = document.getElementById("orders-panel");
    if (orders && orders.dataset.pollUrl) {
      window.htmx.ajax("GET", orders.dataset.pollUrl, { target: "#orders-panel", swap: "outerHTML" });
    }
    document.querySelectorAll("[data-refresh]").forEach(function (panel) {
      window.htmx.trigger(panel, "terminal:refresh");
    });
  }

  function connectUserSocket(delay) {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var since = "?since=" + (userSeq === null ? "" : encodeURIComponent(userSeq));
    var socket = new WebSocket(scheme + location.host + "/ws/user/" + since);
    var stable = null;
    socket.onopen = function () { stable = setTimeout(function () { delay = RECONNECT_MIN_MS; }, STABLE_MS); };
    socket.onmessage = function (event) {
      if (typeof event.data !== "string") return;
      if (event.data.charAt(0) === "<") {
        applyFragments(event.data);
      } else if (event.data.charAt(0) === "{") {
        var frame = null;
        try { frame = JSON.parse(event.data); } catch (error) { return; }
        if (frame && frame.type === "seq" && typeof frame.seq === "number") userSeq = frame.seq;
        else if (frame && frame.type === "resync") resyncBooks();
      }
    };
    socket.onclose = function (event) {
      clearTimeout(stable);
      if (FINAL_CLOSES[event.code]) {
        socketEnded(event.code);
        return;
      }
      setTimeout(function () { connectUserSocket(Math.min(delay * 2, RECONNECT_MAX_MS)); }, delay);
    };
  }

  /* The order ticket: a dialog whose form the server renders for the chosen instrument and side. */
  function selectedInstrument() {
    var row = document.activeElement && document.activeElement.closest("[data-instrument]");
    row = row || document.querySelector("#watchlist tr[data-instrument].selected") ||
          document.querySelector("#watchlist tr[data-instrument]");
    return row ? row.dataset.instrument : null;
  }

  function openTicket(side, instrument) {
    var trading = document.getElementById("trading"), dialog = document.getElementById("ticket");
    if (!trading || !trading.dataset.ticketUrl || !dialog || !window.htmx) return; // viewers have no ticket
    instrument = instrument || selectedInstrument();
    if (!instrument) return;
    var url = trading.dataset.ticketUrl + "?instrument=" + encodeURIComponent(instrument) + "&side=" + side;
    window.htmx.ajax("GET", url, { target: "#ticket-body", swap: "innerHTML" }).then(function () {
      if (!dialog.open) dialog.showModal();
      var lots = dialog.querySelector("input[name=lots]");
      if (lots) { lots.focus(); lots.select(); }
    });
  }

  function closeTicket() {
    var dialog = document.getElementById("ticket");
    if (dialog && dialog.open) dialog.close();
  }

  function showTab(tab) {
    document.querySelectorAll(".book-tabs [role=tab]").forEach(function (other) {
      var selected = other === tab;
      other.setAttribute("aria-selected", selected ? "true" : "false");
      var panel = document.getElementById(other.getAttribute("aria-controls"));
      if (panel) {
        panel.hidden = !selected;
        if (selected && window.htmx) window.htmx.trigger(panel, "show"); // a book not loaded yet loads now
      }
    });
  }

  /* Panels marked data-refresh (hx-trigger="terminal:refresh") re-render every POLL_MS while the
   * browser tab and the panel are showing. htmx's own filter ("every 2s [!document.hidden]") needs
   * eval, which the Content-Security-Policy and the htmx config forbid, so this timer fires them. */
  function refreshShownPanels() {
    if (document.hidden || !window.htmx) return;
    document.querySelectorAll("[data-refresh]").forEach(function (panel) {
      if (!panel.hidden && panel.getClientRects().length) window.htmx.trigger(panel, "terminal:refresh");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setInterval(refreshShownPanels, POLL_MS);
    document.addEventListener("visibilitychange", refreshShownPanels); // up to date at once on return
    document.addEventListener("keydown", onKey);
    document.addEventListener("terminal:open-ticket", function (event) { openTicket(event.detail.side, event.detail.instrument); });
    document.addEventListener("terminal:close-ticket", closeTicket);
    document.addEventListener("click", function (event) {
      var clicked = event.target.closest && event.target.closest("#watchlist tr[data-instrument]");
      if (clicked && !event.target.closest("button, a, input, form")) selectRow(clicked);
      var button = event.target.closest("button");
      if (!button) return;
      if (button.classList.contains("close-ticket")) closeTicket();
      else if (button.dataset.ticketSide) openTicket(button.dataset.ticketSide, button.closest("[data-instrument]").dataset.instrument);
      else if (button.getAttribute("role") === "tab") showTab(button);
    });
    var kept = null;
    document.body.addEventListener("htmx:beforeSwap", function (event) {
      if (event.detail.target.id !== "watchlist") return;
      var row = document.querySelector("#watchlist tr[data-instrument][aria-selected=true]");
      kept = row ? { id: row.dataset.instrument, focus: row === document.activeElement } : null;
    });
    document.body.addEventListener("htmx:afterSwap", function (event) {
      if (kept && event.detail.target.id === "watchlist") { restoreSelection(kept.id, kept.focus); kept = null; }
      // An order the ticket just placed: show its row at once (the socket may bring it too).
      event.detail.target.querySelectorAll && event.detail.target.querySelectorAll("template.rows").forEach(function (rows) {
        applyFragments(rows.innerHTML);
        rows.remove();
      });
      // The positions panel re-renders itself every 2 s; keep the chosen tab showing.
      var selected = document.querySelector(".book-tabs [aria-selected=true]");
      if (selected) showTab(selected);
    });
    var firstTab = document.querySelector(".book-tabs [role=tab]");
    if (firstTab) showTab(firstTab);
    if (document.getElementById("trading") || document.getElementById("alert-toasts")) {
      userSeq = pageSeq();
      connectUserSocket(RECONNECT_MIN_MS);
    }
    if (!document.getElementById("watchlist")) return;
    var live = new LiveQuotes(document.getElementById("live-status"), {
      instruments: function () { return instrumentsOf("watchlist"); },
      poll: pollWatchlist
    });
    window.terminalLive = live;
    live.connect();
    document.body.addEventListener("htmx:afterSwap", function () { live.sync(); });
  });

  window.terminalApplyFragments = applyFragments;
  window.TerminalLiveQuotes = LiveQuotes;
  window.terminalInstrumentsOf = instrumentsOf;
})();
