// Live quotes for a [data-tick-socket] table: subscribe to the rows' instruments and swap each
// element the server sends (hx-swap-oob fragments) into the page by its id. Reconnects after a drop.
(function () {
  "use strict";
  var table = document.querySelector("[data-tick-socket]");
  if (!table) return;
  var ids = Array.prototype.map.call(table.querySelectorAll("[data-instrument]"), function (row) {
    return Number(row.getAttribute("data-instrument"));
  });
  if (!ids.length) return;

  function connect(delay) {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + table.getAttribute("data-tick-socket"));
    socket.onopen = function () {
      delay = 1000;
      socket.send(JSON.stringify({ action: "subscribe", instruments: ids }));
    };
    socket.onmessage = function (event) {
      if (event.data.charAt(0) === "{") return; // acknowledgements and error frames
      var template = document.createElement("template");
      template.innerHTML = event.data;
      Array.prototype.forEach.call(template.content.children, function (fresh) {
        var current = document.getElementById(fresh.id);
        if (current) {
          fresh.removeAttribute("hx-swap-oob");
          current.replaceWith(fresh);
        }
      });
    };
    socket.onclose = function () {
      setTimeout(function () { connect(Math.min(delay * 2, 30000)); }, delay);
    };
  }
  connect(1000);
})();
