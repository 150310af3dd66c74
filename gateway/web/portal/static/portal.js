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
        row.dataset.final = j.finalized ? "true" : "false";
      }
    } catch (e) { /* the next tick tries again */ }
  };
  setInterval(tick, 3000);
}

// Job details: follow the status and the log while the job runs.
function setupJobLive(el) {
  const logEl = document.getElementById("log");
  let offset = 0, done = false;
  const pollLog = async () => {
    const r = await fetch(`${el.dataset.logUrl}?offset=${offset}`, {credentials: "same-origin"});
    if (!r.ok) return;
    const text = await r.text();
    if (text) { logEl.textContent += text; logEl.scrollTop = logEl.scrollHeight; }
    offset = parseInt(r.headers.get("X-Log-Offset") || offset, 10);
    if (r.headers.get("X-Job-Finalized") === "true" && !text) done = true;
  };
  const pollStatus = async () => {
    const j = await getJSON(el.dataset.statusUrl);
    const badge = document.getElementById("job-status");
    if (badge.textContent !== j.status) {
      badge.textContent = j.status; badge.className = `badge ${j.status}`;
    }
    document.getElementById("job-reason").textContent = j.reason || "";
    if (j.finalized && el.dataset.final !== "true") {
      // Finished: fetch the page once more and swap in its tabs (files, outputs) in place.
      el.dataset.final = "true";
      const html = await (await fetch(location.href, {credentials: "same-origin"})).text();
      const fresh = new DOMParser().parseFromString(html, "text/html");
      for (const id of ["panel-files", "panel-outputs", "job-facts"]) {
        const mine = document.getElementById(id), theirs = fresh.getElementById(id);
        if (mine && theirs) mine.innerHTML = theirs.innerHTML;
      }
      document.querySelectorAll("#cancel-job").forEach(b => b.closest("form").remove());
    }
  };
  const loop = async () => {
    try { await pollLog(); if (el.dataset.final !== "true") await pollStatus(); } catch (e) {}
    if (!done) setTimeout(loop, 2000);
  };
  loop();
}

// Run form: the "show advanced" toggle and the data-path browser.
function setupRunForm(form) {
  const toggle = document.getElementById("show-advanced");
  if (toggle) toggle.addEventListener("change", () =>
    form.querySelectorAll(".advanced").forEach(e => e.hidden = !toggle.checked));
  const browser = document.getElementById("browser");
  if (!browser) return;
  const target = document.getElementById(browser.dataset.target);
  const expSelect = document.getElementById("experiment");
  expSelect.addEventListener("change", () => {
    const [p, e] = expSelect.value.split("/");
    browser.dataset.url = browser.dataset.base.replace("/projects/P/experiments/E/",
      `/projects/${encodeURIComponent(p)}/experiments/${encodeURIComponent(e)}/`);
    target.value = ""; show("");
  });
  const show = async (path) => {
    const entries = await getJSON(`${browser.dataset.url}?path=${encodeURIComponent(path)}`);
    browser.innerHTML = "";
    const here = document.createElement("p");
    here.textContent = `/${path}`; here.className = "muted"; browser.append(here);
    if (path) {
      const up = document.createElement("button"); up.type = "button"; up.textContent = "⬑ ..";
      up.onclick = () => show(path.split("/").slice(0, -1).join("/")); browser.append(up);
    }
    for (const e of entries) {
      const b = document.createElement("button"); b.type = "button";
      b.textContent = (e.type === "dir" ? "📁 " : "📄 ") + e.name;
      b.dataset.path = e.path;
      b.onclick = () => { target.value = e.path; if (e.type === "dir") show(e.path); };
      browser.append(b);
    }
  };
  show("");
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-tabs]").forEach(setupTabs);
  document.querySelectorAll("table[data-status-url]").forEach(setupJobStatuses);
  document.querySelectorAll("[data-job-live]").forEach(setupJobLive);
  document.querySelectorAll("form[data-run-form]").forEach(setupRunForm);
});
