// The broker accounts page: choosing a broker shows (and sends) its family's credentials only
// (without this script every family's fieldset shows, each naming the brokers it is for).
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
      const other = fieldset.dataset.group !== chosen;
      fieldset.hidden = other;
      fieldset.disabled = other; // only the chosen family's credentials are sent
    });
  }
  select.addEventListener("change", show);
  show();
})();
