/* The option chain page: live last prices over one tick socket (the shared quote fragments, swapped by
 * terminal.js's applyFragments), controls that apply on change, and arrow keys between strikes.
 * OI and IV come from the server, which re-renders the chain every few seconds (hx-trigger="every 5s");
 * that refresh also keeps the page current while the socket is down. */
(function () {
  "use strict";

  var RECONNECT_MIN_MS = 1000, RECONNECT_MAX_MS = 15000;

  function chainInstruments() {
    var chain = document.getElementById("option-chain");
    if (!chain || !chain.dataset.instruments) return [];
    return chain.dataset.instruments.split(",").filter(Boolean).map(Number);
  }

  function ChainSocket(statusEl) {
    this.statusEl = statusEl;
    this.socket = null;
    this.subscribed = new Set();
    this.delay = RECONNECT_MIN_MS;
  }

  ChainSocket.prototype.setState = function (state, label) {
    if (!this.statusEl) return;
    this.statusEl.dataset.state = state;
    this.statusEl.textContent = label;
  };

  ChainSocket.prototype.connect = function () {
    var self = this, scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/ws/ticks/?format=html");
    this.socket = socket;
    socket.onopen = function () {
      self.delay = RECONNECT_MIN_MS;
      self.subscribed = new Set();
      self.setState("live", "Live");
      self.sync();
    };
    socket.onmessage = function (event) {
      if (typeof event.data === "string" && event.data.charAt(0) === "<" && window.terminalApplyFragments) {
        window.terminalApplyFragments(event.data);
      }
    };
    socket.onclose = function () {
      self.socket = null;
      self.setState("polling", "Reconnecting… (refreshing every 5 s)");
      setTimeout(function () { self.connect(); }, self.delay);
      self.delay = Math.min(self.delay * 2, RECONNECT_MAX_MS);
    };
  };

  /* Subscribe to the strikes shown now (the window moves with the money) and drop the others. */
  ChainSocket.prototype.sync = function () {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return;
    var wanted = new Set(chainInstruments()), self = this;
    var add = Array.from(wanted).filter(function (id) { return !self.subscribed.has(id); });
    var drop = Array.from(this.subscribed).filter(function (id) { return !wanted.has(id); });
    if (add.length) this.socket.send(JSON.stringify({ action: "subscribe", instruments: add }));
    if (drop.length) this.socket.send(JSON.stringify({ action: "unsubscribe", instruments: drop }));
    this.subscribed = wanted;
  };

  function onControlsChange(event) {
    var form = event.currentTarget;
    if (event.target.name === "underlying") form.elements.expiry.value = ""; // its own nearest expiry
    form.requestSubmit ? form.requestSubmit() : form.submit();
  }

  /* Up/Down move between strikes; Home/End jump to the ends; A returns to the money. */
  function onChainKey(event) {
    var row = event.target.closest && event.target.closest("#option-chain tbody tr");
    if (!row) return;
    var target = null, rows = row.parentElement.rows;
    if (event.key === "ArrowDown") target = row.nextElementSibling;
    else if (event.key === "ArrowUp") target = row.previousElementSibling;
    else if (event.key === "Home") target = rows[0];
    else if (event.key === "End") target = rows[rows.length - 1];
    else if (event.key === "a" || event.key === "A") target = row.parentElement.querySelector("tr.atm");
    if (target) { event.preventDefault(); target.focus(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var controls = document.getElementById("chain-controls");
    if (controls) controls.addEventListener("change", onControlsChange);
    if (!document.getElementById("option-chain")) return;
    document.addEventListener("keydown", onChainKey);
    var live = new ChainSocket(document.getElementById("live-status"));
    live.connect();
    document.body.addEventListener("htmx:afterSwap", function () { live.sync(); });
    document.body.addEventListener("htmx:beforeSwap", function (event) {
      // Skip the refresh while a strike has keyboard focus (the swap would drop it); prices stay live.
      var focused = document.activeElement && document.activeElement.closest && document.activeElement.closest("#option-chain tbody tr");
      if (focused && event.detail.target && event.detail.target.id === "option-chain") {
        event.detail.shouldSwap = false;
      }
    });
  });
})();
