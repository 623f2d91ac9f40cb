/* What the dashboard's chart (static/js/chart.js) draws over its candles:
 *
 * - Indicators, computed by the server from the same stored bars (GET /chart/<id>/indicators/, talipp,
 *   as the strategies compute them): one request per page of history the chart draws, with the same
 *   timeframe, limit and before, merged by bar time; when a live tick opens a new bar the latest few
 *   bars' values are asked again (the bar just closed is stored by then). EMA, SMA, VWAP, Bollinger and
 *   Supertrend are drawn on the price pane; RSI and MACD each in a pane of their own. The trader's choice
 *   is kept in localStorage, per user.
 * - Open orders as price lines (side, quantity, limit or trigger price) and the position's average
 *   price, read from the order book and positions rows the page already keeps current (the user's
 *   socket pushes order rows; the positions panel refreshes itself), redrawn whenever they change.
 * - A limit price by clicking the chart: in "Limit at click" mode (or with Alt held) a click opens the
 *   ticket the watchlist's B/S buttons open, as a LIMIT order at the clicked price rounded to the tick;
 *   below the last price a buy, above it a sell. Nothing is sent: the trader places it from the ticket. */
(function () {
  "use strict";

  var IST_OFFSET = 19800, DAY = 86400, SESSION_OPEN = 9 * 3600 + 15 * 60;
  var SECONDS = { "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": DAY };
  var LIVE_LIMIT = 5;  // bars asked again when a new bar opens
  var COLORS = {
    ema: "#f59e0b", sma: "#38bdf8", vwap: "#e879f9", bb: "#a3a3a3", supertrendUp: "#22c55e", supertrendDown: "#ef4444",
    rsi: "#c4b5fd", macd: "#38bdf8", signal: "#f59e0b", histUp: "rgba(34,197,94,.6)", histDown: "rgba(239,68,68,.6)"
  };
  var BUY = "#22c55e", SELL = "#ef4444", AVERAGE = "#60a5fa";

  function bucket(t, timeframe) {  // as chart.js: IST-shifted opening time of the bar holding UTC second t
    var width = SECONDS[timeframe], local = Math.floor(t) + IST_OFFSET;
    if (width >= DAY) return Math.floor(local / DAY) * DAY;
    return Math.floor((local - SESSION_OPEN) / width) * width + SESSION_OPEN;
  }

  /* ---- the menu and the trader's choice ---- */

  function storageKey(panel) { return "chart-studies:" + (panel.dataset.user || ""); }

  /* The studies the menu asks for, as the endpoint names them: "ema:20", "macd:12:26:9". */
  function studiesOf(form) {
    var names = [];
    form.querySelectorAll("input[type=checkbox]").forEach(function (box) {
      if (!box.checked) return;
      var params = [];
      form.querySelectorAll("input[name^='" + box.name + "-']").forEach(function (input) { params.push(input.value.trim()); });
      names.push([box.name].concat(params).join(":"));
    });
    return names;
  }

  function restore(form, names) {
    names.forEach(function (name) {
      var parts = name.split(":"), box = form.querySelector("input[type=checkbox][name='" + parts[0] + "']");
      if (!box) return;
      box.checked = true;
      form.querySelectorAll("input[name^='" + parts[0] + "-']").forEach(function (input, i) {
        if (parts[i + 1]) input.value = parts[i + 1];
      });
    });
  }

  /* ---- indicators ---- */

  function Studies(chart, panel, form) {
    this.chart = chart;
    this.panel = panel;
    this.form = form;
    this.names = [];
    this.series = {};   // study key -> {line name -> series}
    this.values = {};   // study key -> {line name -> {bar time -> value}}
    this.request = 0;
    this.error = document.getElementById("chart-studies-error");
    var saved = [];
    try { saved = JSON.parse(localStorage.getItem(storageKey(panel)) || "[]"); } catch (e) { saved = []; }
    if (Array.isArray(saved)) restore(form, saved.filter(function (n) { return typeof n === "string"; }));
    this.names = studiesOf(form);
  }

  Studies.prototype.say = function (text) {
    if (this.error) this.error.textContent = text;
  };

  Studies.prototype.changed = function () {
    this.names = studiesOf(this.form);
    try { localStorage.setItem(storageKey(this.panel), JSON.stringify(this.names)); } catch (e) { /* private mode */ }
    this.rebuild();
    this.fetchAll();
  };

  /* Remove every study's series and its panes, then add the chosen studies' (series carry no data yet). */
  Studies.prototype.rebuild = function () {
    var LC = window.LightweightCharts, lc = this.chart.chart, self = this;
    Object.keys(this.series).forEach(function (key) {
      Object.keys(self.series[key]).forEach(function (line) { lc.removeSeries(self.series[key][line]); });
    });
    for (var i = lc.panes().length - 1; i > 0; i--) {
      try { lc.removePane(i); } catch (e) { /* already gone with its last series */ }
    }
    this.series = {};
    this.values = {};
    var pane = 0, short = (document.getElementById("chart").clientWidth || 900) < 600;
    var line = function (color, paneIndex, extra) {
      var options = { color: color, lineWidth: 1, priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false };
      Object.keys(extra || {}).forEach(function (k) { options[k] = extra[k]; });
      return lc.addSeries(LC.LineSeries, options, paneIndex);
    };
    this.names.forEach(function (name) {
      var kind = name.split(":")[0], s = {};
      if (kind === "bb") {
        s.upper = line(COLORS.bb, 0); s.middle = line(COLORS.bb, 0, { lineStyle: LC.LineStyle.Dotted }); s.lower = line(COLORS.bb, 0);
      } else if (kind === "supertrend") {
        s.value = line(COLORS.supertrendUp, 0, { lineWidth: 2 });
      } else if (kind === "rsi") {
        s.value = line(COLORS.rsi, ++pane, { lastValueVisible: true });
        s.value.createPriceLine({ price: 70, color: "#4b5563", lineWidth: 1, lineStyle: LC.LineStyle.Dashed, axisLabelVisible: false });
        s.value.createPriceLine({ price: 30, color: "#4b5563", lineWidth: 1, lineStyle: LC.LineStyle.Dashed, axisLabelVisible: false });
      } else if (kind === "macd") {
        pane += 1;
        s.hist = lc.addSeries(LC.HistogramSeries, { priceLineVisible: false, lastValueVisible: false }, pane);
        s.macd = line(COLORS.macd, pane);
        s.signal = line(COLORS.signal, pane);
      } else if (COLORS[kind]) {
        s.value = line(COLORS[kind], 0, { lineWidth: 2 });
      }
      self.series[name] = s;
    });
    // Each oscillator a fifth of the price pane's height (a third on a phone); the chart grows to hold them.
    this.panel.classList.toggle("with-panes", pane > 0);
    lc.panes().forEach(function (p, index) { p.setStretchFactor(index ? 1 : (short ? 3 : 5)); });
    this.panel.dataset.studies = this.names.join(",");
    this.panel.dataset.panes = String(lc.panes().length);
  };

  Studies.prototype.url = function (limit, before) {
    var c = this.chart;
    return this.panel.dataset.indicatorsUrl + c.instrument + "/indicators/?timeframe=" + c.timeframe +
      "&limit=" + limit + (before ? "&before=" + encodeURIComponent(before) : "") +
      "&studies=" + encodeURIComponent(this.names.join(","));
  };

  /* Ask for one page's values and merge them; a newer instrument, timeframe or choice supersedes. */
  Studies.prototype.fetchPage = function (limit, before) {
    if (!this.names.length || !this.chart.instrument) return;
    var self = this, ticket = this.request, tf = this.chart.timeframe;
    fetch(this.url(limit, before), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) throw new Error(body && body.message ? body.message : "HTTP " + response.status);
          return body;
        });
      })
      .then(function (body) {
        if (ticket !== self.request || tf !== self.chart.timeframe) return;
        var times = body.ts.map(function (ts) { return bucket(Date.parse(ts) / 1000, tf); });
        Object.keys(body.studies).forEach(function (key) {
          var lines = body.studies[key].lines, store = self.values[key] = self.values[key] || {};
          Object.keys(lines).forEach(function (name) {
            var into = store[name] = store[name] || {};
            lines[name].forEach(function (value, i) { into[times[i]] = value; });
          });
        });
        self.say("");
        self.draw();
      })
      .catch(function (error) { if (ticket === self.request) self.say("Indicators: " + error.message); });
  };

  /* All the bars drawn: the first page, then every page scrolled back, as chart.js fetched them. */
  Studies.prototype.fetchAll = function () {
    this.request += 1;
    this.values = {};
    var bars = this.chart.bars.length;
    if (bars) this.fetchPage(Math.min(bars, 12000), null);
  };

  Studies.prototype.draw = function () {
    var bars = this.chart.bars, self = this;
    Object.keys(this.series).forEach(function (key) {
      var s = self.series[key], v = self.values[key] || {};
      var points = function (name, color) {
        var values = v[name] || {};
        return bars.map(function (bar) {
          var value = values[bar.time];
          if (value === null || value === undefined) return { time: bar.time };
          var point = { time: bar.time, value: value };
          if (color) point.color = color(value, bar.time);
          return point;
        });
      };
      Object.keys(s).forEach(function (name) {
        if (key.indexOf("supertrend") === 0) {
          var trend = v.trend || {};
          s[name].setData(points("value", function (value, time) { return trend[time] < 0 ? COLORS.supertrendDown : COLORS.supertrendUp; }));
        } else if (name === "hist") {
          s[name].setData(points("hist", function (value) { return value < 0 ? COLORS.histDown : COLORS.histUp; }));
        } else {
          s[name].setData(points(name));
        }
      });
    });
    this.panel.dataset.studiesDrawn = Object.keys(this.values).join(",");
  };

  /* ---- orders and the position ---- */

  function numberOf(text) {
    var value = parseFloat(String(text || "").replace(/,/g, ""));
    return isNaN(value) ? null : value;
  }

  function Marks(chart, panel) {
    this.chart = chart;
    this.panel = panel;
    this.lines = [];
  }

  /* The charted instrument's working orders and position, as the books on the page show them. */
  Marks.prototype.read = function () {
    var symbol = this.panel.dataset.symbol, exchange = this.panel.dataset.exchange, marks = [];
    var same = function (cell) {
      var text = cell ? cell.textContent.trim() : "", parts = text.split(":");
      return parts[1] === symbol && (!exchange || parts[0] === exchange);
    };
    document.querySelectorAll("#orders-body tr.order-row").forEach(function (row) {
      if (!row.querySelector("details.modify") || !same(row.querySelector(".symbol"))) return;  // working orders only
      var side = row.querySelector(".side").textContent.trim(), qty = row.querySelector(".qty").textContent.trim();
      var price = row.querySelector("input[name=price]"), trigger = row.querySelector("input[name=trigger_price]");
      var color = side === "BUY" ? BUY : SELL, open = qty.split("/");
      var rest = open.length === 2 ? Number(open[1]) - Number(open[0]) : qty;
      if (price && numberOf(price.value) !== null) marks.push({ price: numberOf(price.value), color: color, title: side + " " + rest + " LMT", id: row.id });
      if (trigger && numberOf(trigger.value) !== null) marks.push({ price: numberOf(trigger.value), color: color, title: side + " " + rest + " TRG", id: row.id, dashed: true });
    });
    document.querySelectorAll("#positions-body tr.position-row").forEach(function (row) {
      var qty = numberOf(row.querySelector(".qty") && row.querySelector(".qty").textContent);
      var average = numberOf(row.querySelector(".avg") && row.querySelector(".avg").textContent);
      if (!qty || average === null || !same(row.querySelector(".symbol"))) return;
      marks.push({ price: average, color: AVERAGE, title: "AVG " + (qty > 0 ? "+" : "") + qty, id: row.id });
    });
    return marks;
  };

  Marks.prototype.draw = function () {
    var LC = window.LightweightCharts, candles = this.chart.candles;
    this.lines.forEach(function (line) { candles.removePriceLine(line); });
    this.lines = this.read().map(function (mark) {
      return candles.createPriceLine({
        price: mark.price, color: mark.color, lineWidth: 1, axisLabelVisible: true, title: mark.title,
        lineStyle: mark.dashed ? LC.LineStyle.Dashed : LC.LineStyle.Solid
      });
    });
    this.panel.dataset.marks = String(this.lines.length);
  };

  /* ---- a limit price by clicking ---- */

  function fillTicket(price) {
    var body = document.getElementById("ticket-body");
    if (!body) return;
    var onSwap = function (event) {
      if (event.detail.target !== body) return;
      document.body.removeEventListener("htmx:afterSwap", onSwap);
      var type = body.querySelector("select[name=order_type]"), input = body.querySelector("input[name=price]");
      if (type) { type.value = "LIMIT"; type.dispatchEvent(new Event("change", { bubbles: true })); }
      if (input) { input.value = price; input.dispatchEvent(new Event("input", { bubbles: true })); }
    };
    document.body.addEventListener("htmx:afterSwap", onSwap);
  }

  function clickToLimit(chart, panel) {
    var button = document.getElementById("chart-click-limit");
    if (!document.getElementById("ticket")) { if (button) button.hidden = true; return; }  // no ticket: no trading
    var armed = false;
    var arm = function (on) {
      armed = on;
      if (button) button.setAttribute("aria-pressed", String(on));
      panel.classList.toggle("click-limit", on);
    };
    if (button) button.addEventListener("click", function () { arm(!armed); });
    chart.chart.subscribeClick(function (param) {
      var alt = param.sourceEvent && param.sourceEvent.altKey;
      if ((!armed && !alt) || !param.point || !chart.instrument) return;
      var raw = chart.candles.coordinateToPrice(param.point.y);
      if (raw === null || !isFinite(raw) || raw <= 0) return;
      var price = (Math.round(raw / chart.tickSize) * chart.tickSize).toFixed(chart.places);
      var last = chart.bars[chart.bars.length - 1];
      var side = last && Number(price) > last.close ? "SELL" : "BUY";
      arm(false);
      panel.dataset.clickedPrice = price;
      fillTicket(price);
      document.dispatchEvent(new CustomEvent("terminal:open-ticket", { detail: { side: side, instrument: String(chart.instrument) } }));
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.getElementById("chart-panel"), chart = window.terminalChart;
    var form = document.getElementById("studies-form");
    if (!panel || !chart || !form) return;  // chart.js's DOMContentLoaded handler runs first (script order)
    var studies = new Studies(chart, panel, form), marks = new Marks(chart, panel);
    window.terminalChartStudies = studies;
    studies.rebuild();
    form.addEventListener("change", function () { studies.changed(); });
    form.addEventListener("submit", function (event) { event.preventDefault(); studies.changed(); });
    panel.addEventListener("chart:page", function (event) {
      if (event.detail.latest) { studies.request += 1; studies.values = {}; }
      studies.fetchPage(event.detail.limit, event.detail.before);
      marks.draw();
    });
    panel.addEventListener("chart:bar", function () { studies.fetchPage(LIVE_LIMIT, null); });
    panel.addEventListener("chart:instrument", function () { studies.request += 1; studies.values = {}; studies.draw(); marks.draw(); });
    // Order rows arrive over the user's socket or an htmx swap; the positions panel re-renders itself.
    var trading = document.getElementById("trading"), pending = null;
    if (trading && window.MutationObserver) {
      new MutationObserver(function () {
        clearTimeout(pending);
        pending = setTimeout(function () { marks.draw(); }, 50);
      }).observe(trading, { childList: true, subtree: true });
    }
    clickToLimit(chart, panel);
    if (chart.bars.length) studies.fetchAll();
    marks.draw();
  });
})();
