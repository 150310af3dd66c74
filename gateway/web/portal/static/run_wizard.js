// Run Job as a three-step wizard. The server page shows all three steps in one form
// (that is the page without this script); here one step shows at a time, CONTINUE asks
// the server what is wrong with the form (run/check) and shows every problem of the
// step next to its field, and a step chip is reachable once the steps before it are
// right. Preview and Submit stay plain form posts, so the server's page is the truth.
"use strict";

function setupRunWizard(form) {
  const steps = [...form.querySelectorAll("fieldset.step")];
  const chips = [...form.querySelectorAll(".step-chip")];
  const last = steps.length;
  let current = parseInt(form.dataset.step || "1", 10);
  let reachable = current;  // the furthest step the person may jump to

  form.querySelectorAll(".wizard-nav, .wizard-end [data-back], .step-chip, button.browse")
    .forEach(e => { e.hidden = false; });
  form.querySelectorAll(".step-label").forEach(e => { e.hidden = true; });
  form.classList.add("wizard");

  const show = (n, focus) => {
    current = n;
    reachable = Math.max(reachable, n);
    steps.forEach(s => { s.hidden = parseInt(s.dataset.step, 10) !== n; });
    chips.forEach(c => {
      const k = parseInt(c.dataset.goto, 10);
      c.disabled = k > reachable;
      if (k === n) c.setAttribute("aria-current", "step"); else c.removeAttribute("aria-current");
      c.classList.toggle("done", k < n);
    });
    if (focus) {
      const step = steps[n - 1];
      const first = step.querySelector("[aria-invalid='true']") || step.querySelector("legend");
      if (first === step.querySelector("legend")) { step.tabIndex = -1; step.focus(); } else first.focus();
    }
  };

  const fieldsOf = (n) => new Set([...steps[n - 1].querySelectorAll("[data-field]")].map(e => e.dataset.field));

  // Show the server's problems for the fields of steps 1..n, clearing the others there.
  const showProblems = (problems, n) => {
    for (let k = 1; k <= n; k++) {
      for (const field of fieldsOf(k)) {
        const problem = problems.find(p => p.field === field);
        const control = form.querySelector(`[data-field="${CSS.escape(field)}"]`);
        const message = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
        if (message) { message.textContent = problem ? problem.message : ""; message.hidden = !problem; }
        if (control) {
          if (problem) control.setAttribute("aria-invalid", "true"); else control.removeAttribute("aria-invalid");
          // An advanced input with a problem must be seen.
          const holder = control.closest(".advanced");
          if (problem && holder) { holder.hidden = false; const t = document.getElementById("show-advanced"); if (t) t.checked = true; }
        }
      }
    }
    const summary = document.getElementById("run-problems");
    if (summary) summary.hidden = !problems.some(p => p.step <= n);
  };

  const problemsNow = async () => {
    const r = await fetch(form.dataset.checkUrl, {
      method: "POST", credentials: "same-origin", body: new FormData(form),
      headers: {"Accept": "application/json", "X-CSRFToken": csrf()}});
    if (!r.ok) throw new Error(`check: ${r.status}`);
    const answer = await r.json();
    // Running over many values: say how many tasks before it is submitted.
    const count = document.getElementById("task-count");
    if (count) {
      count.hidden = !(answer.tasks > 1);
      count.textContent = answer.tasks > 1 ? `This runs ${answer.tasks} tasks as one sweep (Slurm job array).` : "";
    }
    return answer.problems;
  };

  const next = async (button) => {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    try {
      const problems = await problemsNow();
      showProblems(problems, current);
      const here = problems.filter(p => p.step <= current);
      if (here.length) { show(Math.min(...here.map(p => p.step)), true); return; }
      reachable = Math.max(reachable, current + 1);
      show(Math.min(current + 1, last), true);
    } catch (e) {
      // The server could not be asked: go on; Submit will say what is wrong.
      show(Math.min(current + 1, last), true);
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  };

  // A field being fixed loses its old message (the next CONTINUE checks it again).
  form.addEventListener("input", e => {
    const field = e.target.dataset && e.target.dataset.field;
    if (!field || e.target.getAttribute("aria-invalid") !== "true") return;
    e.target.removeAttribute("aria-invalid");
    const message = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
    if (message) { message.textContent = ""; message.hidden = true; }
  });

  form.querySelectorAll("[data-next]").forEach(b => b.addEventListener("click", () => next(b)));
  form.querySelectorAll("[data-back]").forEach(b => b.addEventListener("click", () => show(Math.max(1, current - 1), true)));
  chips.forEach(c => c.addEventListener("click", () => show(parseInt(c.dataset.goto, 10), true)));

  // "show advanced" is a form field: the server keeps it across preview, and BACK and
  // CONTINUE never reset it.
  const toggle = document.getElementById("show-advanced");
  if (toggle) toggle.addEventListener("change", () =>
    form.querySelectorAll(".param.advanced").forEach(e => {
      e.hidden = !toggle.checked && !e.querySelector("[aria-invalid='true']");
    }));

  // BROWSE: pick a file or folder of the chosen experiment for any Path input.
  const experiment = document.getElementById("experiment");
  const filesUrl = () => {
    const [p, e] = experiment.value.split("/");
    return form.dataset.filesUrl.replace("/projects/P/experiments/E/",
      `/projects/${encodeURIComponent(p)}/experiments/${encodeURIComponent(e || "")}/`);
  };
  form.querySelectorAll("button.browse").forEach(b => b.addEventListener("click", () => {
    const input = document.getElementById(b.dataset.browse);
    if (!window.DataBrowser || !experiment.value) return;
    const start = input.value.includes("/") ? input.value.split("/").slice(0, -1).join("/") : "";
    window.DataBrowser.pick({
      listUrl: filesUrl(), title: `Choose ${input.name.replace(/^input-/, "")} in ${experiment.value}`, start,
      onPick: (path) => {
        input.value = path;
        input.dispatchEvent(new Event("input", {bubbles: true}));
        input.focus();
      },
    });
  }));

  show(current, false);
  if (document.getElementById("preview")) document.getElementById("preview-heading").scrollIntoView();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-run-form]").forEach(setupRunWizard);
});
