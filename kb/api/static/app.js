// Progressive enhancement only: every page works without this file.
// Leaves empty and default fields out of the search URL, so bookmarked and shared links stay short.
"use strict";
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!form.classList || !form.classList.contains("search")) return;
  Array.prototype.forEach.call(form.elements, function (field) {
    if (field.name && field.name !== "q" && (field.value === "" || field.hasAttribute("data-default"))) {
      field.disabled = true;
    }
  });
});
// Coming back with the browser's back button shows the form as it was left: enable the fields again.
window.addEventListener("pageshow", function () {
  Array.prototype.forEach.call(document.querySelectorAll(".search [disabled]"), function (field) {
    field.disabled = false;
  });
});
