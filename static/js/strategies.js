/* A deployment's equity curve for the day (TradingView lightweight-charts): the minute marks the page
 * carries in <script id="equity-marks" type="application/json">, redrawn each time HTMX swaps in the
 * polled live part (which carries the marks again). Times are shifted to IST, as the chart shows UTC. */
(function () {
  "use strict";

  var IST_OFFSET = 19800;
  var chart = null, series = null;

  function marks() {
    var node = document.getElementById("equity-marks");
    if (!node) return [];
    try {
      return JSON.parse(node.textContent).map(function (m) {
        return { time: m.time + IST_OFFSET, value: Number(m.value) };
      });
    } catch (error) {
      return [];
    }
  }

  function draw() {
    var box = document.getElementById("equity-chart"), LC = window.LightweightCharts;
    if (!box || !LC) return;
    var data = marks(), empty = document.getElementById("equity-empty");
    if (empty) empty.hidden = data.length > 0;
    box.hidden = data.length === 0;
    if (!data.length) return;
    if (!chart) {
      chart = LC.createChart(box, {
        autoSize: true,
        layout: { background: { color: "transparent" }, textColor: "#9aa4b2" },
        grid: { vertLines: { color: "#1f2430" }, horzLines: { color: "#1f2430" } },
        timeScale: { timeVisible: true, secondsVisible: false },
        rightPriceScale: { borderVisible: false }
      });
      series = chart.addSeries(LC.BaselineSeries, {
        baseValue: { type: "price", price: 0 },
        topLineColor: "#22c55e", bottomLineColor: "#ef4444",
        topFillColor1: "rgba(34,197,94,.25)", topFillColor2: "rgba(34,197,94,.02)",
        bottomFillColor1: "rgba(239,68,68,.02)", bottomFillColor2: "rgba(239,68,68,.25)"
      });
    }
    series.setData(data);
    chart.timeScale().fitContent();
  }

  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target && event.target.id === "deployment-live") draw();
  });
})();
