/* Alert toasts: the server pushes them into #alert-toasts over the page's socket (terminal.js); each
 * goes away after TOAST_MS or when dismissed. Its firing's row stays in the alerts panel. */
(function () {
  "use strict";

  var TOAST_MS = 15000;

  function expire(toast) {
    if (toast.dataset.expires) return;
    toast.dataset.expires = "1";
    setTimeout(function () { toast.remove(); }, TOAST_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var toasts = document.getElementById("alert-toasts");
    if (!toasts) return;
    new MutationObserver(function () {
      toasts.querySelectorAll(".toast").forEach(expire);
    }).observe(toasts, { childList: true });
    toasts.addEventListener("click", function (event) {
      var close = event.target.closest(".toast-close");
      if (close) close.closest(".toast").remove();
    });
  });
})();
