/* Backtest charts (TradingView lightweight-charts): a run's equity curve with its drawdown in a pane below,
 * from <script id="backtest-equity" type="application/json"> ([{time, equity, drawdown}], time ISO 8601
 * UTC); and on the compare page both runs' equity from <script id="backtest-curves">. Times are shifted
 * to IST, as the chart shows UTC. */
(function () {
  "use strict";

  var IST_OFFSET = 19800;

  function read(id) {
    var node = document.getElementById(id);
    if (!node) return null;
    try { return JSON.parse(node.textContent); } catch (error) { return null; }
  }

  function seconds(iso) { return Math.floor(Date.parse(iso) / 1000) + IST_OFFSET; }

  function series(points, field, sign) {
    var out = [], last = null;
    points.forEach(function (p) {
      var t = seconds(p.time);
      if (last !== null && t <= last) return;  // strictly ascending, as the chart requires
      last = t;
      out.push({ time: t, value: sign * Number(p[field]) });
    });
    return out;
  }

  function chartIn(box, LC) {
    return LC.createChart(box, {
      autoSize: true,
      layout: { background: { color: "transparent" }, textColor: "#9aa4b2" },
      grid: { vertLines: { color: "#1f2430" }, horzLines: { color: "#1f2430" } },
      timeScale: { timeVisible: true, secondsVisible: false },
      rightPriceScale: { borderVisible: false }
    });
  }

  function drawRun(LC) {
    var box = document.getElementById("backtest-chart"), points = read("backtest-equity");
    if (!box || !points || !points.length) return;
    var chart = chartIn(box, LC);
    chart.addSeries(LC.LineSeries, { color: "#60a5fa", lineWidth: 2, title: "Equity" }).setData(series(points, "equity", 1));
    chart.addSeries(LC.AreaSeries, {
      lineColor: "#ef4444", topColor: "rgba(239,68,68,.05)", bottomColor: "rgba(239,68,68,.35)",
      lineWidth: 1, title: "Drawdown", invertFilledArea: true
    }, 1).setData(series(points, "drawdown", -1));
    var panes = chart.panes();
    if (panes.length > 1) panes[1].setHeight(Math.round(box.clientHeight * 0.3));
    chart.timeScale().fitContent();
  }

  function drawCompare(LC) {
    var box = document.getElementById("compare-chart"), curves = read("backtest-curves");
    if (!box || !curves) return;
    var chart = chartIn(box, LC), colours = ["#60a5fa", "#f59e0b"], names = ["A", "B"];
    curves.forEach(function (points, n) {
      if (points.length) chart.addSeries(LC.LineSeries, { color: colours[n], lineWidth: 2, title: names[n] }).setData(series(points, "equity", 1));
    });
    chart.timeScale().fitContent();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var LC = window.LightweightCharts;
    if (!LC) return;
    drawRun(LC);
    drawCompare(LC);
  });
})();
