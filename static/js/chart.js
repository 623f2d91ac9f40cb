/* The dashboard's candlestick chart (TradingView lightweight-charts): stored history from
 * GET /api/marketdata/candles/{id}?timeframe=...&limit=..., then the last candle kept current from ticks.
 *
 * History comes in pages: the first is the latest `page` bars of the timeframe (at 1m, 11,250 bars,
 * 30 sessions of 375 minutes); when the user scrolls to within EDGE bars of the left edge, the next
 * `more` bars before the oldest one drawn are fetched (?before=<its time>&limit=...) and prepended,
 * until a page comes back short: the stored history (an import's first day) begins there.
 *
 * Live data: /ws/ticks/ speaks one format per socket (chosen by ?format= at connect), and the page's
 * quote socket (terminal.js) asks for HTML fragments. The chart needs numbers and the tick time, so it
 * opens its own ?format=json socket subscribed only to the charted instrument.
 *
 * Times: the chart shows IST, so every bar time is shifted by +5:30 before it is handed to the library
 * (which displays UTC); buckets are aligned like the server's: intraday bars from 09:15 IST, days from
 * IST midnight.
 *
 * Prices (the OHLC legend, the price scale) read as the server writes them (core/money.py):
 * the instrument's tick places, at least two, with Indian grouping through Intl.NumberFormat('en-IN').
 *
 * What is drawn over the candles (indicators, orders, positions, the click for a limit price) is
 * static/js/chart_overlays.js; it follows the bars through events on the panel: chart:page (a page of
 * history drawn: detail {latest, before, limit}), chart:bar (a live tick opened a new bar) and
 * chart:instrument (another instrument charted). */
(function () {
  "use strict";

  var IST_OFFSET = 19800, DAY = 86400, SESSION_OPEN = 9 * 3600 + 15 * 60;
  var TIMEFRAMES = {
    "1m": { seconds: 60, page: 11250, more: 3000, shown: 375 }, "5m": { seconds: 300, page: 2400, more: 1200, shown: 300 },
    "15m": { seconds: 900, page: 1500, more: 750, shown: 200 }, "1h": { seconds: 3600, page: 1000, more: 500, shown: 150 },
    "1d": { seconds: DAY, page: 730, more: 500, shown: 250 }
  };
  var EDGE = 20;  // bars from the left edge at which the next page further back is fetched
  var RECONNECT_MIN_MS = 1000, RECONNECT_MAX_MS = 15000;
  var UP = "#22c55e", DOWN = "#ef4444";

  /* The places a price on this tick shows: at least two, more when the tick needs them (0.0025: 4). */
  function placesOf(tick) {
    var text = String(tick || "").replace(/0+$/, ""), dot = text.indexOf(".");
    return Math.max(2, dot < 0 ? 0 : text.length - dot - 1);
  }

  var formats = {};
  function priceFormat(places) {
    if (!formats[places]) {
      formats[places] = new Intl.NumberFormat("en-IN", { minimumFractionDigits: places, maximumFractionDigits: places });
    }
    return formats[places];
  }

  /* The opening time (IST-shifted seconds) of the bar holding UTC epoch second t. */
  function bucket(t, timeframe) {
    var width = TIMEFRAMES[timeframe].seconds, local = Math.floor(t) + IST_OFFSET;
    if (width >= DAY) return Math.floor(local / DAY) * DAY;
    return Math.floor((local - SESSION_OPEN) / width) * width + SESSION_OPEN;
  }

  function Chart(panel) {
    var LC = window.LightweightCharts;
    this.panel = panel;
    this.status = document.getElementById("chart-status");
    this.ohlc = document.getElementById("chart-ohlc");
    this.instrument = panel.dataset.instrument ? Number(panel.dataset.instrument) : null;
    this.symbol = panel.dataset.symbol || "";
    this.places = placesOf(panel.dataset.tick);
    this.timeframe = panel.dataset.timeframe || "1m";
    this.bars = [];
    this.oldest = null;      // the server's time of the oldest bar drawn (the next page ends before it)
    this.exhausted = false;  // the stored history begins at the oldest bar drawn
    this.loadingEarlier = false;
    this.lastVolume = null;
    this.request = 0;
    this.socket = null;
    this.subscribed = null;
    this.delay = RECONNECT_MIN_MS;
    this.chart = LC.createChart(document.getElementById("chart"), {
      autoSize: true,
      // The library's own logo injects a <style> element, which the CSP refuses: the panel links instead.
      layout: { background: { type: "solid", color: "#171a21" }, textColor: "#9aa3b2", fontSize: 11, attributionLogo: false },
      grid: { vertLines: { color: "#1f2430" }, horzLines: { color: "#1f2430" } },
      rightPriceScale: { borderColor: "#262b36" },
      timeScale: { borderColor: "#262b36", timeVisible: true, secondsVisible: false, rightOffset: 4 },
      crosshair: { mode: LC.CrosshairMode.Normal }
    });
    this.candles = this.chart.addSeries(LC.CandlestickSeries, {
      upColor: UP, downColor: DOWN, borderUpColor: UP, borderDownColor: DOWN, wickUpColor: UP, wickDownColor: DOWN
    });
    this.volume = this.chart.addSeries(LC.HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "volume" });
    this.chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.82, bottom: 0 } });
    this.candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.22 } });
    this.setTick(panel.dataset.tick);
    var self = this;
    this.chart.timeScale().subscribeVisibleLogicalRangeChange(function (range) {
      if (range && range.from < EDGE) self.loadEarlier();
    });
    this.chart.subscribeCrosshairMove(function (param) {
      var bar = param && param.seriesData ? param.seriesData.get(self.candles) : null;
      self.showOhlc(bar || self.bars[self.bars.length - 1]);
    });
  }

  Chart.prototype.say = function (text) { if (this.status) this.status.textContent = text; };

  Chart.prototype.price = function (value) { return priceFormat(this.places).format(value); };

  /* The price scale steps and shows the charted instrument's tick. */
  Chart.prototype.setTick = function (tick) {
    this.places = placesOf(tick);
    this.tickSize = parseFloat(tick) > 0 ? parseFloat(tick) : Math.pow(10, -this.places);
    var step = parseFloat(tick);
    var self = this;
    this.candles.applyOptions({
      priceFormat: {
        type: "custom", minMove: step > 0 ? step : Math.pow(10, -this.places),
        formatter: function (price) { return self.price(price); }
      }
    });
  };

  Chart.prototype.showOhlc = function (bar) {
    if (!this.ohlc) return;
    this.ohlc.textContent = bar
      ? "O " + this.price(bar.open) + "  H " + this.price(bar.high) + "  L " + this.price(bar.low) + "  C " + this.price(bar.close)
      : "";
    this.ohlc.className = "chart-ohlc " + (bar && bar.close < bar.open ? "down" : "up");
  };

  Chart.prototype.publish = function () {
    this.panel.dataset.bars = String(this.bars.length);
    if (this.oldest) this.panel.dataset.oldest = this.oldest; else delete this.panel.dataset.oldest;
    this.panel.dataset.historyStart = String(this.exhausted);
    this.panel.dataset.timeframe = this.timeframe;
    if (this.instrument) this.panel.dataset.instrument = String(this.instrument);
    this.showOhlc(this.bars[this.bars.length - 1]);
  };

  Chart.prototype.emit = function (name, detail) {
    this.panel.dispatchEvent(new CustomEvent(name, { detail: detail || {} }));
  };

  Chart.prototype.volumeBar = function (bar) {
    return { time: bar.time, value: bar.volume, color: bar.close < bar.open ? "rgba(239,68,68,.45)" : "rgba(34,197,94,.45)" };
  };

  Chart.prototype.fetchBars = function (query) {
    var url = this.panel.dataset.candlesUrl + this.instrument + "?timeframe=" + this.timeframe + query;
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) throw new Error(body && body.message ? body.message : "HTTP " + response.status);
          return body;
        });
      });
  };

  Chart.prototype.barsOf = function (rows, tf) {
    return rows.map(function (row) {
      return {
        time: bucket(Date.parse(row.ts) / 1000, tf),
        open: parseFloat(row.open), high: parseFloat(row.high), low: parseFloat(row.low),
        close: parseFloat(row.close), volume: row.volume
      };
    });
  };

  /* Load the latest page of the current instrument and timeframe; a newer request supersedes an older one. */
  Chart.prototype.load = function () {
    if (!this.instrument) return;
    var self = this, ticket = ++this.request, tf = this.timeframe, size = TIMEFRAMES[tf].page;
    this.loadingEarlier = false;
    this.panel.setAttribute("aria-busy", "true");
    this.say("Loading " + this.symbol + " " + tf + "…");
    this.fetchBars("&limit=" + size)
      .then(function (rows) {
        if (ticket !== self.request) return;
        self.bars = self.barsOf(rows, tf);
        self.oldest = rows.length ? rows[0].ts : null;
        self.exhausted = rows.length < size;
        self.candles.setData(self.bars);
        self.volume.setData(self.bars.map(self.volumeBar));
        // The latest bars at the normal width, pinned to the right edge; older ones a scroll away.
        // (on a narrow screen fewer, about one bar for every 3 px)
        var scale = self.chart.timeScale(), width = document.getElementById("chart").clientWidth || 900;
        var shown = Math.min(TIMEFRAMES[tf].shown, Math.max(60, Math.floor(width / 3)));
        scale.applyOptions({ barSpacing: 9 });
        scale.scrollToRealTime();
        if (self.bars.length > shown) scale.setVisibleLogicalRange({ from: self.bars.length - shown, to: self.bars.length + 4 });
        self.lastVolume = null;
        self.publish();
        self.emit("chart:page", { latest: true, before: null, limit: size });
        self.say(self.bars.length ? "" : "No stored " + tf + " candles yet: live ticks start the first one.");
      })
      .catch(function (error) {
        if (ticket === self.request) self.say("Could not load candles: " + error.message);
      })
      .then(function () { if (ticket === self.request) self.panel.removeAttribute("aria-busy"); });
  };

  /* Prepend the page before the oldest bar drawn (the user scrolled to the left edge). */
  Chart.prototype.loadEarlier = function () {
    if (!this.instrument || !this.oldest || this.exhausted || this.loadingEarlier) return;
    var self = this, ticket = this.request, tf = this.timeframe, size = TIMEFRAMES[tf].more;
    this.loadingEarlier = true;
    this.panel.setAttribute("aria-busy", "true");
    this.fetchBars("&limit=" + size + "&before=" + encodeURIComponent(this.oldest))
      .then(function (rows) {
        if (ticket !== self.request) return;
        var first = self.bars.length ? self.bars[0].time : Infinity;
        var older = self.barsOf(rows, tf).filter(function (bar) { return bar.time < first; });
        var before = self.oldest;
        self.exhausted = rows.length < size;
        if (rows.length) self.oldest = rows[0].ts;
        if (older.length) {
          // The view keeps its bars: the time scale holds its distance from the latest bar.
          self.bars = older.concat(self.bars);
          self.candles.setData(self.bars);
          self.volume.setData(self.bars.map(self.volumeBar));
          self.emit("chart:page", { latest: false, before: before, limit: size });
        }
        self.publish();
      })
      .catch(function (error) {
        if (ticket === self.request) self.say("Could not load earlier candles: " + error.message);
      })
      .then(function () {
        if (ticket !== self.request) return;
        self.loadingEarlier = false;
        self.panel.removeAttribute("aria-busy");
      });
  };

  /* Fold one tick into the last bar (or open the next one). */
  Chart.prototype.tick = function (quote) {
    var price = parseFloat(quote.ltp), time = bucket(quote.ts / 1000, this.timeframe);
    if (isNaN(price)) return;
    var delta = this.lastVolume !== null && quote.v >= this.lastVolume ? quote.v - this.lastVolume : 0;
    this.lastVolume = quote.v;
    var last = this.bars[this.bars.length - 1];
    if (last && time < last.time) return; // older than what is drawn
    if (last && time === last.time) {
      last.high = Math.max(last.high, price);
      last.low = Math.min(last.low, price);
      last.close = price;
      last.volume += delta;
    } else {
      last = { time: time, open: price, high: price, low: price, close: price, volume: delta };
      this.bars.push(last);
      if (this.bars.length === 1) this.say("");
      this.emit("chart:bar");
    }
    this.candles.update({ time: last.time, open: last.open, high: last.high, low: last.low, close: last.close });
    this.volume.update(this.volumeBar(last));
    this.publish();
  };

  Chart.prototype.connect = function () {
    var self = this, scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/ws/ticks/?format=json");
    this.socket = socket;
    var stable = null;
    socket.onopen = function () {
      // The backoff resets only once the socket has stayed up (see terminal.js).
      stable = setTimeout(function () { self.delay = RECONNECT_MIN_MS; }, 10000);
      self.subscribed = null;
      self.sync();
    };
    socket.onmessage = function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (message.type !== "quotes") return;
      message.quotes.forEach(function (quote) { if (quote.i === self.instrument) self.tick(quote); });
    };
    socket.onclose = function (event) {
      // History stays on screen; the last candle resumes when the socket is back (then reload the gap).
      clearTimeout(stable);
      self.socket = null;
      if (event.code === 4401 || event.code === 4429) return;  // signed out, or too many sockets: no retry
      setTimeout(function () { self.connect(); self.load(); }, self.delay);
      self.delay = Math.min(self.delay * 2, RECONNECT_MAX_MS);
    };
  };

  Chart.prototype.sync = function () {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN || this.subscribed === this.instrument) return;
    if (this.subscribed) this.socket.send(JSON.stringify({ action: "unsubscribe", instruments: [this.subscribed] }));
    if (this.instrument) this.socket.send(JSON.stringify({ action: "subscribe", instruments: [this.instrument] }));
    this.subscribed = this.instrument;
  };

  Chart.prototype.show = function (instrument, symbol, tick, exchange) {
    if (!instrument || (instrument === this.instrument && this.bars.length)) return;
    this.instrument = instrument;
    this.symbol = symbol;
    this.panel.dataset.symbol = symbol;
    this.panel.dataset.exchange = exchange || "";
    this.setTick(tick);
    document.getElementById("chart-symbol").textContent = symbol;
    this.bars = [];
    this.oldest = null;
    this.exhausted = false;
    this.candles.setData([]);
    this.volume.setData([]);
    this.sync();
    this.emit("chart:instrument");
    this.load();
    this.markRow();
  };

  Chart.prototype.setTimeframe = function (timeframe) {
    if (!TIMEFRAMES[timeframe] || timeframe === this.timeframe) return;
    this.timeframe = timeframe;
    this.panel.querySelectorAll("button[data-timeframe]").forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.dataset.timeframe === timeframe));
    });
    this.chart.applyOptions({ timeScale: { timeVisible: TIMEFRAMES[timeframe].seconds < DAY } });
    this.load();
  };

  /* Mark the charted watchlist row (the watchlist is re-rendered by htmx, so after every swap too). */
  Chart.prototype.markRow = function () {
    var id = String(this.instrument);
    document.querySelectorAll("#watchlist tr[data-instrument]").forEach(function (row) {
      row.classList.toggle("charted", row.dataset.instrument === id);
    });
  };

  function rowOf(target) {
    return target && target.closest ? target.closest("#watchlist tr[data-instrument]") : null;
  }

  function symbolOf(row) {
    var sym = row.querySelector(".sym");
    return sym ? sym.textContent.trim() : "";
  }

  function exchangeOf(row) {
    var exchange = row.querySelector("th small");
    return exchange ? exchange.textContent.trim() : "";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.getElementById("chart-panel");
    if (!panel || !window.LightweightCharts) return;
    var chart = new Chart(panel);
    window.terminalChart = chart;
    panel.querySelector(".timeframes").addEventListener("click", function (event) {
      var button = event.target.closest("button[data-timeframe]");
      if (button) chart.setTimeframe(button.dataset.timeframe);
    });
    document.addEventListener("click", function (event) {
      var row = rowOf(event.target);
      if (row && !event.target.closest("button, a, input, form")) chart.show(Number(row.dataset.instrument), symbolOf(row), row.dataset.tick, exchangeOf(row));
    });
    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      var row = rowOf(event.target);
      if (event.key === "Enter" && row && event.target === row) {
        event.preventDefault();
        chart.show(Number(row.dataset.instrument), symbolOf(row), row.dataset.tick, exchangeOf(row));
        return;
      }
      // 1-5 pick the timeframe when focus is not in a field
      var typing = /^(INPUT|SELECT|TEXTAREA)$/.test(event.target.tagName) || event.target.isContentEditable;
      var buttons = panel.querySelectorAll("button[data-timeframe]"), index = Number(event.key) - 1;
      if (!typing && index >= 0 && index < buttons.length) chart.setTimeframe(buttons[index].dataset.timeframe);
    });
    document.body.addEventListener("htmx:afterSwap", function () { chart.markRow(); });
    chart.connect();
    chart.load();
    chart.markRow();
  });
})();
