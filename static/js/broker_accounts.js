// The broker accounts page: choosing a broker shows its family's credentials only (without this
// script every family's fieldset shows, each naming the brokers it is for).
(function () {
  "use strict";
  const select = document.querySelector("#add-broker-account select[name=broker]");
  if (!select) return;
  const groups = Object.fromEntries(
    (select.dataset.groups || "").split(" ").filter(Boolean).map((pair) => pair.split("="))
  );
  function show() {
    const chosen = groups[select.value];
    document.querySelectorAll("#add-broker-account fieldset.credentials").forEach((fieldset) => {
      fieldset.hidden = fieldset.dataset.group !== chosen;
    });
  }
  select.addEventListener("change", show);
  show();
})();
