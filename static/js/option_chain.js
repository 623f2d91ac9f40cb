/* The option chain page: live last prices over terminal.js's quotes socket (the shared quote fragments),
 * controls that apply on change, and arrow keys between strikes.
 * OI and IV come from the server, which re-renders the chain every few seconds (hx-trigger="every 5s");
 * that refresh also keeps the page current while the socket is down. */
(function () {
  "use strict";

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
    // terminal.js's quotes socket, subscribed to the strikes shown; the chain's own 5 s refresh is the fallback.
    var live = new window.TerminalLiveQuotes(document.getElementById("live-status"), {
      instruments: function () { return window.terminalInstrumentsOf("option-chain"); },
      downLabel: "Reconnecting… (refreshing every 5 s)"
    });
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
