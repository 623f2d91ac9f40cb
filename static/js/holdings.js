/* The holdings page: last prices over terminal.js's quotes socket (the shared quote cells); when a row's
 * price changes, its value, P&L and day change are worked out again from the row's data-* attributes,
 * and the summary with them. The server re-renders the panel every few seconds (data-refresh), which
 * also keeps the page current while the socket is down. */
(function () {
  "use strict";

  var rupees = new Intl.NumberFormat("en-IN", { style: "currency", currency: "INR", minimumFractionDigits: 2, maximumFractionDigits: 2 });

  function number(text) {
    var n = parseFloat(String(text).replace(/[^0-9.\-]/g, ""));
    return isNaN(n) ? null : n;
  }

  /* Write an amount; a P&L (``signed``) is also coloured as a profit or a loss. */
  function setAmount(cell, amount, suffix, signed) {
    if (!cell || amount === null) return;
    cell.textContent = rupees.format(amount) + (suffix || "");
    if (signed === false) return;
    cell.classList.toggle("loss", amount < 0);
    cell.classList.toggle("profit", amount >= 0);
  }

  function recompute(row) {
    var ltp = number(row.querySelector(".ltp") && row.querySelector(".ltp").textContent);
    var quantity = Number(row.dataset.quantity), average = Number(row.dataset.average);
    var close = row.dataset.close === "" ? null : Number(row.dataset.close);
    if (ltp === null) return null;
    var invested = average * quantity, pnl = (ltp - average) * quantity;
    setAmount(row.querySelector(".value"), ltp * quantity, "", false);
    setAmount(row.querySelector(".pnl"), pnl);
    var net = row.querySelector(".net-chg");
    if (net && invested) { net.textContent = (pnl * 100 / invested).toFixed(2) + "%"; net.classList.toggle("loss", pnl < 0); net.classList.toggle("profit", pnl >= 0); }
    var day = close === null ? null : (ltp - close) * quantity;
    if (day !== null) setAmount(row.querySelector(".day-chg"), day, close ? " (" + ((ltp - close) * 100 / close).toFixed(2) + "%)" : "");
    return { invested: invested, value: ltp * quantity, pnl: pnl, day: day || 0 };
  }

  function recomputeAll() {
    var totals = { invested: 0, value: 0, pnl: 0, day: 0 };
    document.querySelectorAll("#holdings .holding-row").forEach(function (row) {
      var figures = recompute(row);
      if (!figures) return;
      Object.keys(totals).forEach(function (key) { totals[key] += figures[key]; });
    });
    if (!document.querySelector("#holdings .holding-row")) return;
    setAmount(document.getElementById("holdings-value"), totals.value, "", false);
    var pnl = document.getElementById("holdings-pnl");
    if (pnl) setAmount(pnl, totals.pnl, totals.invested ? " (" + (totals.pnl * 100 / totals.invested).toFixed(2) + "%)" : "");
    setAmount(document.getElementById("holdings-day"), totals.day);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!document.getElementById("holdings")) return;
    var live = new window.TerminalLiveQuotes(document.getElementById("live-status"), {
      instruments: function () { return window.terminalInstrumentsOf("holdings"); },
      downLabel: "Reconnecting… (refreshing every 2 s)"
    });
    live.connect();
    document.body.addEventListener("htmx:afterSwap", function () { live.sync(); });
    // A price swapped in by the socket replaces the row's .ltp span: work the rows out again. Only an
    // added .ltp element counts, so the cells this rewrites do not set it off again.
    function priceArrived(change) {
      return Array.prototype.some.call(change.addedNodes, function (node) {
        return node.nodeType === 1 && node.classList.contains("ltp") && node.closest(".holding-row");
      });
    }
    new MutationObserver(function (changes) {
      if (changes.some(priceArrived)) recomputeAll();
    }).observe(document.querySelector(".holdings-page"), { childList: true, subtree: true });
  });
})();
