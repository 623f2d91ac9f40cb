/* The baskets page: after a basket is placed, each Place form gets a new one-time token, so that the
 * next click places the basket again while a double click still places it once. */
(function () {
  "use strict";

  function newToken() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.body.addEventListener("htmx:afterSwap", function (event) {
      if (event.detail.target.id !== "basket-result" && !(event.detail.elt && event.detail.elt.id === "basket-result")) return;
      document.querySelectorAll(".saved-baskets input[name=form_token]").forEach(function (input) { input.value = newToken(); });
    });
  });
})();
