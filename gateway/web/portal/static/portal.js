// Batch gateway portal: small progressive enhancements; every page works without it.
"use strict";
const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

async function getJSON(url) {
  const r = await fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}});
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return r.json();
}

// Tabs: buttons with aria-controls switch panels; keyboard arrows move between them.
function setupTabs(root) {
  const tabs = [...root.querySelectorAll('[role="tab"]')];
  const select = (tab) => {
    tabs.forEach(t => {
      const on = t === tab;
      t.setAttribute("aria-selected", on);
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
    });
  };
  tabs.forEach((t, i) => {
    t.addEventListener("click", () => select(t));
    t.addEventListener("keydown", e => {
      if (e.key === "ArrowRight") { tabs[(i + 1) % tabs.length].focus(); select(tabs[(i + 1) % tabs.length]); }
      if (e.key === "ArrowLeft") { const p = tabs[(i - 1 + tabs.length) % tabs.length]; p.focus(); select(p); }
    });
  });
}

// Jobs table: refresh the status cells of unfinished jobs without a reload.
function setupJobStatuses(table) {
  const tick = async () => {
    const rows = [...table.querySelectorAll("tr[data-job][data-final='false']")];
    if (!rows.length) return;
    const ids = rows.map(r => r.dataset.job).join(",");
    try {
      const data = await getJSON(`${table.dataset.statusUrl}?ids=${ids}`);
      for (const row of rows) {
        const j = data[row.dataset.job];
        if (!j) continue;
        const badge = row.querySelector(".badge");
        badge.textContent = j.status; badge.className = `badge ${j.status}`;
        row.querySelector(".reason").textContent = j.reason || "";
        row.querySelector(".cpu").textContent = j.cpu_hours;  // formatted by the server
        row.querySelector(".gpu").textContent = j.gpu_hours;
        row.querySelector(".ended").textContent = j.ended;
        const ended = j.finalized && row.dataset.final !== "true";
        row.dataset.final = j.finalized ? "true" : "false";
        // Outputs are collected when a job ends: an open row shows them then.
        const expand = row.querySelector("button.expand[aria-expanded='true']");
        if (ended && expand) loadJobOutputs(expand);
      }
    } catch (e) { /* the next tick tries again */ }
  };
  setInterval(tick, 3000);
}

// Jobs table: the "+" of a row opens the row below it, in place, with the job's output
// files (links to the permission-checked download) and OUT_ values, read from the API
// with the session. Built with textContent only: nothing the job wrote becomes markup.
const OUTPUT_FILES_SHOWN = 50;

function setupJobRowExpansion(table) {
  for (const button of table.querySelectorAll("button.expand[aria-controls]")) {
    button.hidden = false;  // without this script there is nothing to expand: Job Details has it all
    button.addEventListener("click", () => {
      const open = button.getAttribute("aria-expanded") !== "true";
      button.setAttribute("aria-expanded", open ? "true" : "false");
      button.textContent = open ? "−" : "+";
      document.getElementById(button.getAttribute("aria-controls")).hidden = !open;
      if (open) loadJobOutputs(button);
    });
  }
}

// Jobs table filters: a page brought back from the browser's cache shows the filters
// of its URL (the form's own values), not the ones typed last before leaving it.
function setupJobFilters(form) {
  window.addEventListener("pageshow", e => { if (e.persisted) form.reset(); });
}

function jobElement(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (className) e.className = className;
  return e;
}

async function loadJobOutputs(button) {
  const body = document.getElementById(button.getAttribute("aria-controls")).querySelector(".job-more-body");
  body.setAttribute("aria-busy", "true");
  body.replaceChildren(jobElement("p", "Loading outputs…", "muted"));
  let parts;
  try {
    const r = await fetch(button.dataset.jobUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}});
    parts = r.ok ? jobOutputsParts(await r.json(), button.dataset.jobUrl, button.dataset.detailsUrl)
      : [jobElement("p", r.status === 404 ? "This job is not available to you." : "The outputs could not be loaded.", "error")];
  } catch (e) {
    parts = [jobElement("p", "The outputs could not be loaded.", "error")];
  }
  body.replaceChildren(...parts);
  body.removeAttribute("aria-busy");
}

function jobOutputsParts(job, jobUrl, detailsUrl) {
  const files = jobElement("section", undefined, "job-more-files");
  files.append(jobElement("h3", "Output files"));
  if (job.output_files.length) {
    const list = jobElement("ul");
    for (const f of job.output_files.slice(0, OUTPUT_FILES_SHOWN)) {
      const item = jobElement("li"), link = jobElement("a", f.path);
      link.href = `${jobUrl}/files/${f.path.split("/").map(encodeURIComponent).join("/")}`;
      // The sizes read as in the data browser (data_browser.js, loaded on every page).
      item.append(link, " ", jobElement("span", window.DataBrowser.humanSize(f.size), "muted"));
      list.append(item);
    }
    files.append(list);
    const more = job.output_files.length - OUTPUT_FILES_SHOWN;
    if (more > 0) {
      const p = jobElement("p", `and ${more} more: `, "muted"), link = jobElement("a", "see Job Details");
      link.href = detailsUrl; p.append(link); files.append(p);
    }
  } else {
    files.append(jobElement("p", job.finalized ? "No output files." : "Files appear when the job has ended.", "muted"));
  }
  const vars = jobElement("section", undefined, "job-more-vars");
  vars.append(jobElement("h3", "Output variables"));
  const names = Object.keys(job.output_variables);
  if (names.length) {
    const table = jobElement("table"), tbody = jobElement("tbody");
    for (const name of names) {
      const tr = jobElement("tr"), th = jobElement("th"), td = jobElement("td");
      th.scope = "row"; th.append(jobElement("code", name)); td.append(jobElement("code", String(job.output_variables[name])));
      tr.append(th, td); tbody.append(tr);
    }
    table.append(tbody); vars.append(table);
  } else {
    vars.append(jobElement("p", job.finalized ? "No output variables." : "Output variables appear when the job has ended.", "muted"));
  }
  return [files, vars];
}

// Job details: follow the job while it runs. The status, the reason it waits, when Slurm
// expects it to start, its times and usage come from the page's live endpoint, already
// formatted by the server as the page shows them; the log is tailed from the API.
function setupJobLive(el) {
  const logEl = document.getElementById("log");
  let offset = 0, done = false;
  const setText = (id, text) => {
    const e = document.getElementById(id);
    if (e && e.textContent !== text) e.textContent = text;
  };
  const pollLog = async () => {
    const r = await fetch(`${el.dataset.logUrl}?offset=${offset}`, {credentials: "same-origin"});
    if (!r.ok) return;
    const text = await r.text();
    if (text) { logEl.textContent += text; logEl.scrollTop = logEl.scrollHeight; }
    offset = parseInt(r.headers.get("X-Log-Offset") || offset, 10);
    if (r.headers.get("X-Job-Finalized") === "true" && !text) done = true;
  };
  // Parts of the page that change with the job's state are taken from a fresh copy of it.
  const swapFromPage = async (ids) => {
    const html = await (await fetch(location.href, {credentials: "same-origin"})).text();
    const fresh = new DOMParser().parseFromString(html, "text/html");
    for (const id of ids) {
      const mine = document.getElementById(id), theirs = fresh.getElementById(id);
      if (mine && theirs) mine.innerHTML = theirs.innerHTML;
    }
  };
  const pollStatus = async () => {
    const j = await getJSON(el.dataset.statusUrl);
    const badge = document.getElementById("job-status");
    if (badge.textContent !== j.status) {
      const started = badge.textContent === "Pending";
      badge.textContent = j.status; badge.className = `badge ${j.status}`;
      if (started) {
        // Once a job has started, Members and up may tag it: the tag forms appear.
        await swapFromPage(["tag-area"]);
        document.querySelectorAll("form#tag-rename").forEach(setupTagRename);
      }
    }
    setText("job-reason", j.reason || "");
    setText("job-expected", j.expected_start || "");
    document.getElementById("job-expected").hidden = !j.expected_start;
    setText("job-started", j.started); setText("job-ended", j.ended);
    setText("job-cpu", j.cpu_hours); setText("job-gpu", j.gpu_hours);
    setText("job-slurm", j.slurm);
    setText("job-exit", j.exit_code === null ? "" : ` · exit ${j.exit_code}`);
    if (j.finalized && el.dataset.final !== "true") {
      // Outputs are collected when the job ends: fetch the page once more and swap its
      // output tabs in place.
      el.dataset.final = "true";
      await swapFromPage(["panel-files", "panel-outputs"]);
      const dialog = document.getElementById("cancel-dialog");
      if (dialog) { if (dialog.open) dialog.close(); dialog.remove(); }
      document.querySelectorAll("#cancel-form").forEach(f => f.remove());
    }
  };
  const loop = async () => {
    try { await pollLog(); if (el.dataset.final !== "true") await pollStatus(); } catch (e) {}
    if (!done) setTimeout(loop, 2000);
  };
  loop();
}

// Confirmation: a form with data-confirm="<dialog id>" opens that dialog instead of
// submitting, and the dialog's own form does the act. (The dialog says what will happen;
// without this script the server shows the same dialog on a page of its own.)
function setupConfirm(form) {
  const dialog = document.getElementById(form.dataset.confirm);
  if (!dialog || typeof dialog.showModal !== "function") return;
  const opener = form.querySelector("button");
  form.addEventListener("submit", e => { e.preventDefault(); dialog.showModal(); });
  for (const close of dialog.querySelectorAll("[data-close-dialog]")) {
    close.addEventListener("click", e => { e.preventDefault(); dialog.close(); });
  }
  dialog.addEventListener("close", () => opener.focus());
  if (dialog.open) { dialog.close(); dialog.showModal(); }  // asked for by the server
}

// Job details: the pencil of a tag chip picks that tag in the Rename form and puts the
// cursor in its new name.
function setupTagRename(form) {
  const old = form.querySelector("select[name='old']"), name = form.querySelector("input[name='name']");
  for (const b of document.querySelectorAll("#tag-list button.tag-edit")) {
    b.hidden = false;
    b.addEventListener("click", () => {
      old.value = b.dataset.tag; name.value = b.dataset.tag; name.focus(); name.select();
    });
  }
}

// Toasts: the outcome of an action, at the top of the page with a button to dismiss it.
// They stay in the page's flow (never over a button the person wants next) until
// dismissed; a screen reader reads them as a status.
function setupToasts(box) {
  for (const message of box.querySelectorAll(".flash")) {
    const toast = jobElement("div", undefined, "toast"), close = jobElement("button", "×", "link toast-close");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss");
    close.addEventListener("click", () => { toast.remove(); if (!box.querySelector(".toast")) box.remove(); });
    message.replaceWith(toast);
    toast.append(message, close);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".toasts").forEach(setupToasts);
  document.querySelectorAll("[data-tabs]").forEach(setupTabs);
  document.querySelectorAll("table[data-status-url]").forEach(setupJobStatuses);
  document.querySelectorAll("table#jobs").forEach(setupJobRowExpansion);
  document.querySelectorAll("form#jobs-filters").forEach(setupJobFilters);
  document.querySelectorAll("[data-job-live]").forEach(setupJobLive);
  document.querySelectorAll("form[data-confirm]").forEach(setupConfirm);
  document.querySelectorAll("form#tag-rename").forEach(setupTagRename);
});
