// Create/Edit Job Template: inputs and outputs added and removed in place, each input's
// settings (description, advanced, choices) in a dialog behind its pencil, and the
// environment version list narrowed to the chosen environment. Without this script the
// server does the same work (template_form.html says how); everything here is built
// from the page's own <template> rows and set with textContent, never parsed markup.
"use strict";

// Its own scope: the portal's other scripts share the global one.
(() => {
  // Attributes that carry a row's number: names and ids (inputs-3-name) and the words
  // read out (Input 4 default, Settings of input 4).
  const ROW_ATTRIBUTES = ["id", "name", "for", "aria-label", "aria-describedby", "aria-controls", "aria-labelledby"];
  const SUMMARY_DESCRIPTION = 60;  // as views_templates.SUMMARY_DESCRIPTION

  function renumberRow(row, kind, index) {
    const key = new RegExp(`\\b${kind}-\\d+-`, "g");
    const words = kind === "inputs" ? /\b([Ii]nput) \d+\b/g : /\b([Oo]utput) \d+\b/g;
    for (const el of [row, ...row.querySelectorAll("*")]) {
      for (const attribute of ROW_ATTRIBUTES) {
        const value = el.getAttribute(attribute);
        if (value === null) continue;
        const renamed = value.replace(key, `${kind}-${index}-`).replace(words, (m, word) => `${word} ${index + 1}`);
        if (renamed !== value) el.setAttribute(attribute, renamed);
      }
    }
    if (kind === "inputs") showTitle(row);
  }

  function rowNumber(row) {
    return [...row.parentElement.children].indexOf(row) + 1;
  }

  function part(row, role) {
    return row.querySelector(`[data-role="${role}"]`);
  }

  // "Input DC_NAME settings", or "Input 3 settings" while it has no name.
  function showTitle(row) {
    const name = part(row, "name").value.trim().replace(/^DC_/, "");
    part(row, "title").textContent = `Input ${name ? `DC_${name}` : rowNumber(row)} settings`;
  }

  // The few words under an input's row saying what its dialog holds (as the server writes them).
  function showSummary(row) {
    const parts = [];
    if (part(row, "advanced").checked) parts.push("advanced");
    const choices = part(row, "choices").value.split(",").map(c => c.trim()).filter(Boolean);
    if (part(row, "type").value === "choice" && choices.length) parts.push(`choices: ${choices.join(", ")}`);
    const text = part(row, "description").value.split(/\s+/).filter(Boolean).join(" ");
    if (text) parts.push(text.length > SUMMARY_DESCRIPTION ? `${text.slice(0, SUMMARY_DESCRIPTION).trimEnd()}…` : text);
    const summary = row.querySelector(".param-summary");
    const flag = summary.querySelector(".field-error");  // "a setting needs fixing", until it is looked at
    summary.replaceChildren(...(flag ? [flag, " "] : []), parts.join(" · ") || "no description");
  }

  // Choices mean something only for a choice input: the field shows for that type alone.
  function showChoices(row) {
    const isChoice = part(row, "type").value === "choice";
    part(row, "choices-field").hidden = !isChoice;
    part(row, "choices-hint").hidden = true;
  }

  function openSettings(row) {
    const dialog = row.querySelector("dialog");
    if (dialog.open) dialog.removeAttribute("open");  // open in place (the page without script)
    dialog.dataset.shown = "true";
    dialog.showModal();
  }

  function setupInputRow(row) {
    const dialog = row.querySelector("dialog");
    const pencil = row.querySelector('[data-action="settings"]');
    // Shown under the row for pages without this script; hidden without a "close" event.
    if (dialog.open) dialog.removeAttribute("open");
    pencil.hidden = false;
    row.querySelector('[data-action="done"]').hidden = false;
    pencil.addEventListener("click", () => openSettings(row));
    row.querySelector('[data-action="done"]').addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      if (dialog.dataset.shown !== "true") return;
      delete dialog.dataset.shown;
      const flag = row.querySelector(".param-summary .field-error");
      if (flag) flag.remove();
      showSummary(row);
      pencil.focus();
    });
    // Enter in a one-line setting closes the dialog, as Done does, rather than saving the template.
    dialog.addEventListener("keydown", e => {
      if (e.key === "Enter" && e.target.tagName === "INPUT" && e.target.type !== "checkbox") {
        e.preventDefault(); dialog.close();
      }
    });
    part(row, "name").addEventListener("input", () => showTitle(row));
    part(row, "type").addEventListener("change", () => { showChoices(row); showSummary(row); });
    showChoices(row);
    showTitle(row);
  }

  function setupRow(row, list, status) {
    const kind = list.dataset.kind;
    if (kind === "inputs") setupInputRow(row);
    const remove = row.querySelector('[data-action="remove"]');
    remove.hidden = false;
    remove.addEventListener("click", () => removeRow(row, list, status));
  }

  function renumberList(list) {
    [...list.children].forEach((row, index) => renumberRow(row, list.dataset.kind, index));
    document.querySelector(`[data-empty="${list.dataset.kind}"]`).hidden = list.children.length > 0;
  }

  function removeRow(row, list, status) {
    const kind = list.dataset.kind, word = kind === "inputs" ? "Input" : "Output";
    const number = rowNumber(row);
    const name = row.querySelector('input[name$="-name"]').value.trim();
    const next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    renumberList(list);
    status.textContent = `${word} ${number}${name ? ` (${name})` : ""} removed.`;
    // Focus stays near where it was: the row that took this one's place, or the Add button.
    const target = next ? next.querySelector('[data-action="remove"]') : document.querySelector(`[data-add="${kind}"]`);
    target.focus();
  }

  function addRow(list, template, status) {
    const row = template.content.firstElementChild.cloneNode(true);
    list.append(row);
    renumberList(list);
    setupRow(row, list, status);
    const word = list.dataset.kind === "inputs" ? "Input" : "Output";
    status.textContent = `${word} ${list.children.length} added.`;
    row.querySelector('input[name$="-name"]').focus();
  }

  // The version list shows only the chosen environment's versions; a new environment
  // starts from "latest". (Without this script every environment's versions are listed.)
  function setupEnvironmentVersions(environment, version) {
    const narrow = () => {
      for (const option of version.options) {
        if (!option.dataset.env) continue;
        const mine = option.dataset.env === environment.value;
        option.hidden = !mine;
        option.disabled = !mine;
        if (!mine && option.selected) version.value = "";
      }
    };
    environment.addEventListener("change", () => { version.value = ""; narrow(); });
    narrow();
  }

  // The problems listed at the top link to their controls; one inside a settings dialog
  // opens the dialog first.
  function setupProblemLinks(form) {
    for (const link of document.querySelectorAll("#form-problems a[data-problem]")) {
      link.addEventListener("click", e => {
        const target = document.getElementById(link.dataset.problem);
        if (!target || !form.contains(target)) return;
        e.preventDefault();
        const dialog = target.closest("dialog");
        if (dialog) openSettings(dialog.closest("li"));
        target.focus();
      });
    }
  }

  function setupTemplateForm(form) {
    const status = document.getElementById("param-status");
    form.classList.add("scripted");
    form.querySelectorAll(".nojs-only").forEach(e => e.remove());
    for (const [kind, templateId] of [["inputs", "input-row-template"], ["outputs", "output-row-template"]]) {
      const list = document.getElementById(kind), template = document.getElementById(templateId);
      [...list.children].forEach(row => setupRow(row, list, status));
      const add = form.querySelector(`[data-add="${kind}"]`);
      add.hidden = false;
      add.addEventListener("click", () => addRow(list, template, status));
      renumberList(list);
    }
    const environment = document.getElementById("environment"), version = document.getElementById("environment_version");
    if (environment && version) setupEnvironmentVersions(environment, version);
    setupProblemLinks(form);
    // A setting the server refused: its dialog opens so the message beside it is seen.
    const refused = form.querySelector("dialog .field-error");
    if (refused) openSettings(refused.closest("li"));
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("form[data-template-form]").forEach(setupTemplateForm);
  });
})();
