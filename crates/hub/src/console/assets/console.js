// Progressive enhancement of the console: every page works without this script.
"use strict";

function csrf() {
  return document.body.dataset.csrf || "";
}

// A status cell's sync link leads to the sync's confirmation page; with the script, the page's
// sentence is asked in the dialog instead, and the confirmed sync runs in place: the icon turns
// to the clock at once and the stream of status changes takes it from there. A sync the hub
// would refuse opens the page, which says why.
document.addEventListener("click", async (event) => {
  const link = event.target.closest?.("a[data-sync]");
  const dialog = document.getElementById("confirm");
  if (!link || !dialog) return;
  event.preventDefault();
  let page;
  try {
    const response = await fetch(link.href);
    page = new DOMParser().parseFromString(await response.text(), "text/html");
  } catch {
    window.location.href = link.href;
    return;
  }
  const sentence = page.querySelector("[data-sentence]");
  if (!sentence || !page.querySelector("main form")) {
    window.location.href = link.href;
    return;
  }
  const form = dialog.querySelector("form");
  form.action = link.href;
  form.dataset.cell = link.closest("[data-cell]")?.id || "";
  dialog.querySelector("#confirm-title").textContent = page.querySelector("h1")?.textContent || "Sync";
  dialog.querySelector("#confirm-text").textContent = sentence.textContent;
  dialog.querySelector("#confirm-button").textContent = "Sync";
  dialog.showModal();
});

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.cell) return;
  event.preventDefault();
  const cell = document.getElementById(form.dataset.cell);
  delete form.dataset.cell;
  form.closest("dialog")?.close();
  const link = cell?.querySelector("a[data-sync]");
  if (link) {
    link.querySelector("svg")?.setAttribute("class", "icon pending");
    link.title = link.getAttribute("aria-label").replace(/:[^.]*\. Sync now$/, ": syncing now");
    link.removeAttribute("href");
  }
  try {
    const response = await fetch(form.action, {
      method: "POST",
      headers: { "X-Requested-With": "fetch", "X-CSRF-Token": csrf() },
      body: new URLSearchParams(new FormData(form)),
    });
    const html = await response.text();
    if (cell && html.trim().startsWith("<span")) cell.outerHTML = html;
  } catch {
    // the stream of status changes shows where the sync got to
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
    delete form.dataset.cell;
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
