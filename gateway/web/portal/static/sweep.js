// A sweep's page: the counts and each task's status and OUT_ values follow the tasks
// without a reload (textContent only: values come from jobs); the results table sorts
// by any column, numbers as numbers.
"use strict";

function setupSweepLive(counts) {
  const table = document.getElementById("results");
  const tick = async () => {
    if (counts.dataset.finished === "true") return;
    try {
      const r = await fetch(counts.dataset.liveUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}});
      if (r.ok) {
        const data = await r.json();
        for (const [status, n] of Object.entries(data.counts)) {
          const cell = counts.querySelector(`[data-status="${status}"]`);
          if (cell && cell.textContent !== String(n)) cell.textContent = String(n);
        }
        for (const row of table.querySelectorAll("tbody tr[data-job]")) {
          const task = data.tasks[row.dataset.job];
          if (!task) continue;
          const badge = row.querySelector(".status .badge");
          if (badge.textContent !== task.status) { badge.textContent = task.status; badge.className = `badge ${task.status}`; }
          const cpu = row.querySelector("td.cpu");
          if (cpu && cpu.textContent !== task.cpu_hours) cpu.textContent = task.cpu_hours;  // formatted by the server
          for (const cell of row.querySelectorAll("td.out")) {
            const value = task.outputs[cell.dataset.output];
            cell.textContent = value === undefined ? "" : String(value);
          }
        }
        if (data.finished) {
          counts.dataset.finished = "true";
          const cancel = document.getElementById("cancel-sweep-form");
          if (cancel) cancel.remove();
        }
      }
    } catch (e) { /* the next tick tries again */ }
    setTimeout(tick, 2000);
  };
  tick();
}

function setupSortable(table) {
  const headers = [...table.querySelectorAll("thead th")];
  for (const button of table.querySelectorAll("button.sort")) {
    button.addEventListener("click", () => {
      const column = parseInt(button.dataset.column, 10);
      const th = headers[column];
      const ascending = th.getAttribute("aria-sort") !== "ascending";
      headers.forEach(h => h.setAttribute("aria-sort", "none"));
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      const body = table.tBodies[0];
      const key = (row) => row.cells[column].textContent.trim().replace(/^#/, "");
      const rows = [...body.rows].sort((a, b) => {
        const x = key(a), y = key(b), nx = Number(x), ny = Number(y);
        const order = x !== "" && y !== "" && !isNaN(nx) && !isNaN(ny) ? nx - ny : x.localeCompare(y);
        return ascending ? order : -order;
      });
      body.append(...rows);
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("#sweep-counts").forEach(setupSweepLive);
  document.querySelectorAll("table#results").forEach(setupSortable);
});
