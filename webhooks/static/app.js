// Tabs on the settings and user forms, and auto-submit of the scheduler's date picker.
// Without JavaScript every tab panel stays visible and the forms work as plain HTML.
"use strict";

function initTabs(form) {
  const tabs = form.querySelectorAll("[data-tab]");
  const panels = form.querySelectorAll("[data-panel]");
  const activeInput = form.querySelector("[data-active-tab]");
  function show(key) {
    tabs.forEach((tab) => tab.setAttribute("aria-selected", String(tab.dataset.tab === key)));
    panels.forEach((panel) => { panel.hidden = panel.dataset.panel !== key; });
    if (activeInput) activeInput.value = key;  // the server reopens this tab after saving
  }
  tabs.forEach((tab) => tab.addEventListener("click", () => show(tab.dataset.tab)));
  show(activeInput && activeInput.value ? activeInput.value : tabs[0].dataset.tab);
}

// An open «⋯» menu closes on a click elsewhere or Escape (the scheduler opens them:
// schedule.js, also on a right click).
function initMenuClosing() {
  const closeAll = (except) => document.querySelectorAll("details[data-row-menu][open]")
    .forEach((d) => { if (d !== except) d.open = false; });
  document.addEventListener("click", (event) => {
    if (!event.target.closest("details[data-row-menu]")) closeAll(null);
  });
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") closeAll(null); });
}

document.addEventListener("DOMContentLoaded", () => {
  initMenuClosing();
  document.querySelectorAll("form.tabbed").forEach(initTabs);
  document.querySelectorAll("[data-autosubmit]").forEach((input) => {
    input.addEventListener("change", () => {
      // Typing a year fires "change" at 0002, 0020, 0202...; wait for a plausible year.
      if (input.type === "date" && !/^(19|20)\d\d-/.test(input.value)) return;
      input.form.submit();
    });
  });
});
