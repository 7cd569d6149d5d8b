// commhub dashboard: typing a date means a custom period, whatever the list said.
"use strict";

(function () {
  const form = document.getElementById("period");
  if (!form) return;
  const choice = form.elements.namedItem("period");
  for (const name of ["from", "to"]) {
    const input = form.elements.namedItem(name);
    if (input) input.addEventListener("change", () => { choice.value = "custom"; });
  }
})();
