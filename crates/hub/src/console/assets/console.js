// Progressive enhancement of the console: every page works without this script.
"use strict";

function csrf() {
  return document.body.dataset.csrf || "";
}

// A status cell's sync button syncs in place: the icon turns to the clock at once and the
// stream of status changes takes it from there.
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-sync")) return;
  event.preventDefault();
  const cell = form.closest("[data-cell]");
  const button = form.querySelector("button");
  button.disabled = true;
  button.querySelector("svg")?.setAttribute("class", "icon pending");
  button.title = button.getAttribute("aria-label").replace(/:[^.]*\. Sync now$/, ": syncing now");
  try {
    const response = await fetch(form.action, {
      method: "POST",
      headers: { "X-Requested-With": "fetch", "X-CSRF-Token": csrf() },
      body: new URLSearchParams(new FormData(form)),
    });
    const html = await response.text();
    if (cell && html.trim().startsWith("<span")) cell.outerHTML = html;
  } catch (error) {
    button.disabled = false;
  }
});

// Row-menu actions are confirmed in a dialog; without the script, the link opens a page that
// asks the same question.
document.addEventListener("click", (event) => {
  const link = event.target.closest?.("a[data-confirm]");
  const dialog = document.getElementById("confirm");
  if (link && dialog) {
    event.preventDefault();
    const form = dialog.querySelector("form");
    form.action = link.dataset.action;
    dialog.querySelector("#confirm-title").textContent = link.dataset.label;
    dialog.querySelector("#confirm-text").textContent = link.dataset.confirm;
    dialog.querySelector("#confirm-button").textContent = link.dataset.label;
    link.closest("details")?.removeAttribute("open");
    dialog.showModal();
    return;
  }
  if (event.target.closest?.("[data-close]")) {
    event.target.closest("dialog")?.close();
  }
});

function enhancePeople() {
  const all = document.getElementById("select-all");
  if (all) {
    all.hidden = false;
    all.addEventListener("change", () => {
      for (const box of document.querySelectorAll('input[name="ids"]')) box.checked = all.checked;
    });
  }
  const body = document.querySelector("[data-events]");
  const cells = [...document.querySelectorAll("[data-cell]")].map((c) => c.dataset.cell);
  if (!body || cells.length === 0) return;
  const source = new EventSource(`${body.dataset.events}?cells=${encodeURIComponent(cells.join(","))}`);
  source.addEventListener("status", (event) => {
    for (const change of JSON.parse(event.data)) {
      const cell = document.getElementById(change.id);
      if (cell) cell.outerHTML = change.html;
    }
  });
}

document.addEventListener("DOMContentLoaded", enhancePeople);

// A running import's progress is asked for again every second until the import stops.
function followImport(id) {
  setTimeout(async () => {
    const run = document.getElementById(id);
    if (!run?.dataset.progress) return;
    try {
      const response = await fetch(run.dataset.progress);
      if (response.ok) run.outerHTML = await response.text();
    } catch {
      // the next look may find the hub again
    }
    followImport(id);
  }, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const run of document.querySelectorAll("[data-progress]")) followImport(run.id);
});
