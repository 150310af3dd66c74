// The data browser, loaded on every page:
//  - DataBrowser.pick({listUrl, title, start, onPick}): a modal dialog that browses one
//    experiment's folders (GET <listUrl>?path=...) and hands back the file or folder chosen;
//  - on an experiment's page (section#data-browser), uploads of files and whole folders,
//    by choosing or by dropping them, one file at a time with a progress bar each, plus
//    "Go to folder…" with the picker.
// Everything is built with DOM calls and textContent: no name or message becomes markup.
// Wrapped in a function: portal.js declares its own top-level names on the same pages.
(() => {
  "use strict";
  const SCRIPT = document.currentScript;
  const STYLESHEET = SCRIPT ? new URL("data_browser.css", SCRIPT.src).href : "";

  function el(tag, text, props) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "class") e.className = v;
      else if (k in e && typeof v !== "string") e[k] = v;
      else e.setAttribute(k, v);
    }
    return e;
  }

  function button(text, props) {
    return el("button", text, {type: "button", ...props});
  }

  // The same units as the pages (views_projects.human_size).
  function humanSize(bytes) {
    if (bytes === null || bytes === undefined) return "—";
    if (bytes < 1024) return `${bytes} byte${bytes === 1 ? "" : "s"}`;
    const units = ["KiB", "MiB", "GiB", "TiB"];
    let n = bytes, i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
    return `${n.toFixed(1)} ${units[i]}`;
  }

  const csrfToken = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const parentOf = (path) => path.split("/").slice(0, -1).join("/");
  const joinPath = (a, b) => [a, b].filter(Boolean).join("/");
  // Each part of a path as a URL path segment ("/" stays the separator).
  const encodePath = (path) => path.split("/").filter(Boolean).map(encodeURIComponent).join("/");

  // The picker's look lives in data_browser.css, linked once, on the page that opens it.
  let stylesReady = null;
  function ensureStyles() {
    if (stylesReady) return stylesReady;
    const present = [...document.querySelectorAll('link[rel="stylesheet"]')].some(l => l.href === STYLESHEET);
    if (present || !STYLESHEET) return (stylesReady = Promise.resolve());
    const link = el("link", null, {rel: "stylesheet", href: STYLESHEET});
    stylesReady = new Promise(resolve => {
      link.addEventListener("load", resolve);
      link.addEventListener("error", resolve);  // unstyled beats never opening
    });
    document.head.append(link);
    return stylesReady;
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      if (body && body.error) return body.error;
    } catch (e) { /* not JSON: say what the status means */ }
    if (response.status === 401) return "your session has ended: log in again";
    if (response.status === 403) return "you may not do this here";
    if (response.status === 404) return "not found";
    if (response.status === 413) return "the file is larger than the upload limit";
    return `the gateway answered ${response.status}`;
  }

  async function listFolder(listUrl, path) {
    let r;
    try {
      r = await fetch(`${listUrl}?path=${encodeURIComponent(path)}`,
                      {credentials: "same-origin", headers: {"Accept": "application/json"}});
    } catch (e) {
      throw new Error("the gateway could not be reached");
    }
    if (!r.ok) throw new Error(await errorText(r));
    return r.json();
  }

  // --- the picker ----------------------------------------------------------------

  const DIALOG_ID = "data-browser-dialog";

  /**
   * Open the picker. listUrl: an experiment's files listing (…/experiments/<e>/files);
   * title: the dialog's heading; start: the folder (or a file, whose folder is shown)
   * to open at, "" for the experiment's top; onPick(path, type): called with the path
   * chosen, relative to the experiment ("" is its top folder), and "dir" or "file".
   * Returns the <dialog>, which removes itself when closed (Escape, Cancel, a choice).
   */
  function pick({listUrl, title = "Choose data", start = "", onPick = () => {}} = {}) {
    const previous = document.getElementById(DIALOG_ID);
    if (previous) previous.close();
    const opener = document.activeElement;
    const dialog = el("dialog", null, {id: DIALOG_ID, class: "data-browser-dialog",
                                       "aria-labelledby": `${DIALOG_ID}-title`});
    const head = el("div", null, {class: "db-head"});
    head.append(el("h2", title, {id: `${DIALOG_ID}-title`}),
                button("×", {class: "db-close", "aria-label": "Close"}));
    const crumbs = el("ol", null, {class: "db-crumbs"});
    const nav = el("nav", null, {"aria-label": "Folder in the picker"});
    nav.append(crumbs);
    const up = button("↰ Up one folder", {class: "db-up"});
    const status = el("p", "", {class: "db-status", role: "status"});
    const tbody = el("tbody");
    const table = el("table", null, {class: "db-list"});
    const caption = el("caption", "", {class: "db-sr-only"});
    const thead = el("thead");
    const headRow = el("tr");
    for (const name of ["Name", "Size", "Actions"]) {
      const th = el("th", name === "Actions" ? "" : name, {scope: "col"});
      if (name === "Actions") th.append(el("span", "Actions", {class: "db-sr-only"}));
      headRow.append(th);
    }
    thead.append(headRow);
    table.append(caption, thead, tbody);
    const scroller = el("div", null, {class: "db-scroll"});
    scroller.append(table);
    const chooseFolder = button("Choose this folder", {class: "db-choose-folder"});
    const cancel = button("Cancel", {class: "db-cancel"});
    const foot = el("div", null, {class: "db-foot"});
    const here = el("span", "", {class: "db-here"});
    foot.append(here, cancel, chooseFolder);
    dialog.append(head, nav, up, status, scroller, foot);

    let current = "";
    const choose = (path, type) => {
      dialog.close();
      onPick(path, type);
    };

    const renderCrumbs = (path) => {
      crumbs.replaceChildren();
      const parts = path ? path.split("/") : [];
      const levels = [{name: "Top folder", path: ""},
                      ...parts.map((p, i) => ({name: p, path: parts.slice(0, i + 1).join("/")}))];
      levels.forEach((level, i) => {
        const li = el("li");
        if (i === levels.length - 1) li.append(el("span", level.name, {"aria-current": "location"}));
        else {
          const b = button(level.name, {class: "db-crumb"});
          b.addEventListener("click", () => show(level.path));
          li.append(b);
        }
        crumbs.append(li);
      });
    };

    const render = (path, entries) => {
      current = path;
      renderCrumbs(path);
      up.disabled = !path;
      here.textContent = `Folder: /${path}`;
      caption.textContent = `Contents of /${path}`;
      tbody.replaceChildren();
      for (const entry of entries) {
        const tr = el("tr", null, {class: `db-${entry.type}`});
        const name = el("td");
        const size = el("td", entry.type === "dir" ? "—" : humanSize(entry.size), {class: "db-size"});
        const act = el("td", null, {class: "db-act"});
        if (entry.type === "dir") {
          const open = button(null, {class: "db-open", "aria-label": `Open folder ${entry.name}`});
          open.append(el("span", null, {"aria-hidden": "true", class: "db-icon db-icon-folder"}), el("span", entry.name));
          open.addEventListener("click", () => show(entry.path));
          name.append(open);
          const sel = button("Choose", {class: "db-pick", "aria-label": `Choose folder ${entry.name}`});
          sel.addEventListener("click", () => choose(entry.path, "dir"));
          act.append(sel);
        } else {
          const file = button(null, {class: "db-file", "aria-label": `${entry.name}, ${humanSize(entry.size)}`});
          file.append(el("span", null, {"aria-hidden": "true", class: "db-icon db-icon-file"}), el("span", entry.name));
          file.addEventListener("click", () => choose(entry.path, "file"));
          name.append(file);
          const sel = button("Choose", {class: "db-pick", "aria-label": `Choose ${entry.name}`});
          sel.addEventListener("click", () => choose(entry.path, "file"));
          act.append(sel);
        }
        tr.append(name, size, act);
        tbody.append(tr);
      }
      status.textContent = entries.length ? "" : "This folder is empty.";
    };

    // ``start`` may name a file or a folder that is gone: its nearest folder is shown.
    async function show(path, fallBack = false) {
      status.textContent = "Loading…";
      tbody.setAttribute("aria-busy", "true");
      try {
        render(path, await listFolder(listUrl, path));
        // The list was redrawn (the button pressed is gone): the keyboard starts at its top.
        if (dialog.open) (tbody.querySelector("button") || chooseFolder).focus();
      } catch (e) {
        if (fallBack && path) return show(parentOf(path), true);
        status.textContent = `This folder could not be shown: ${e.message}.`;
      } finally {
        tbody.removeAttribute("aria-busy");
      }
    }

    up.addEventListener("click", () => show(parentOf(current)));
    chooseFolder.addEventListener("click", () => choose(current, "dir"));
    cancel.addEventListener("click", () => dialog.close());
    head.querySelector(".db-close").addEventListener("click", () => dialog.close());
    // Escape closes (the dialog's own "cancel"); so does a click on the backdrop.
    dialog.addEventListener("click", e => { if (e.target === dialog) dialog.close(); });
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener && typeof opener.focus === "function" && document.contains(opener)) opener.focus();
    });

    document.body.append(dialog);
    ensureStyles().then(() => {
      dialog.showModal();
      show(String(start || "").replace(/^\/+|\/+$/g, ""), true);
    });
    return dialog;
  }

  window.DataBrowser = {pick, humanSize};

  // --- uploads on an experiment's page ----------------------------------------------

  // Tests (and anyone else) may follow the uploads: "databrowser:upload-progress" for each
  // progress step of a file ({path, loaded, total, value, max} of its <progress>), and
  // "databrowser:uploads-done" ({uploaded, failed}) when the queue is empty.
  const emit = (name, detail) => document.dispatchEvent(new CustomEvent(`databrowser:${name}`, {detail}));

  async function droppedFiles(entries, files) {
    if (!entries.length) return [...files].map(file => ({file, rel: file.name}));
    const out = [];
    const walk = async (entry, prefix) => {
      if (entry.isFile) {
        const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
        out.push({file, rel: prefix + entry.name});
      } else if (entry.isDirectory) {
        const reader = entry.createReader();
        for (;;) {  // a folder's entries come in batches, until an empty one
          const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
          if (!batch.length) break;
          for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
        }
      }
    };
    for (const entry of entries) await walk(entry, "");
    return out;
  }

  function setupUploads(section) {
    const area = document.getElementById("upload-area");
    if (!area) return;  // a Viewer, or the Processed folder: nothing to upload
    const filesUrl = section.dataset.filesUrl, here = section.dataset.path || "";
    const maxBytes = Number(section.dataset.maxBytes);
    const form = document.getElementById("upload-form");
    const filesInput = document.getElementById("upload-files");
    const folderInput = document.getElementById("upload-folder");
    const box = document.getElementById("upload-progress");
    const summary = document.getElementById("upload-summary");
    const overall = document.getElementById("upload-overall");
    const list = document.getElementById("upload-list");
    const items = [];
    let running = false;

    // With this script, choosing starts the upload; the form's button is for pages without it.
    document.getElementById("upload-submit").hidden = true;
    if ("webkitdirectory" in folderInput) document.getElementById("upload-folder-field").hidden = false;
    document.getElementById("drop-hint").hidden = false;

    const setState = (item, state, text) => {
      item.state = state;
      item.li.dataset.state = state;
      item.note.textContent = text;
      item.retry.hidden = state !== "failed";
    };

    const updateOverall = () => {
      const total = items.reduce((n, i) => n + i.file.size, 0);
      const sent = items.reduce((n, i) => n + (i.state === "done" ? i.file.size : i.loaded), 0);
      overall.max = Math.max(total, 1);
      overall.value = Math.min(sent, overall.max);
    };

    const updateSummary = (current) => {
      const done = items.filter(i => i.state === "done").length;
      const failed = items.filter(i => i.state === "failed").length;
      if (current) {
        summary.textContent = `Uploading ${done + failed + 1} of ${items.length}: ${current.rel}`;
      } else {
        summary.textContent = `${done} of ${items.length} file${items.length === 1 ? "" : "s"} uploaded.` +
          (failed ? ` ${failed} not uploaded: see below, and Retry to send again.` : "");
      }
    };

    const makeItem = ({file, rel}) => {
      const li = el("li", null, {class: "upload-item"});
      const name = el("span", rel, {class: "upload-name"});
      const size = el("span", humanSize(file.size), {class: "upload-size muted"});
      const bar = el("progress", null, {max: Math.max(file.size, 1), value: 0, "aria-label": `Uploading ${rel}`});
      const note = el("span", "waiting", {class: "upload-note"});
      const retry = button("Retry", {class: "secondary small upload-retry", "aria-label": `Retry ${rel}`});
      retry.hidden = true;
      li.append(name, size, bar, note, retry);
      list.append(li);
      const item = {file, rel, li, bar, note, retry, loaded: 0, state: "waiting"};
      retry.addEventListener("click", () => {
        item.loaded = 0;
        bar.value = 0;
        setState(item, "waiting", "waiting");
        run();
      });
      return item;
    };

    const send = (item) => new Promise(resolve => {
      const fail = (why) => {
        item.loaded = 0;
        setState(item, "failed", `not uploaded: ${why}`);
        resolve();
      };
      if (item.file.size > maxBytes) {
        fail(`it is ${humanSize(item.file.size)}, more than the ${Math.floor(maxBytes / 2 ** 20)} MB limit for one file`);
        return;
      }
      setState(item, "uploading", "uploading…");
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", `${filesUrl}/${encodePath(joinPath(here, item.rel))}`);
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.addEventListener("progress", e => {
        if (!e.lengthComputable) return;
        item.bar.max = Math.max(e.total, 1);
        item.bar.value = e.loaded;
        item.loaded = e.loaded;
        updateOverall();
        emit("upload-progress", {path: item.rel, loaded: e.loaded, total: e.total,
                                 value: item.bar.value, max: item.bar.max});
      });
      xhr.addEventListener("load", async () => {
        if (xhr.status === 201) {
          item.bar.value = item.bar.max;
          setState(item, "done", "uploaded");
          resolve();
          return;
        }
        let why;
        try { why = JSON.parse(xhr.responseText).error; } catch (e) { why = null; }
        if (!why) why = await errorText(new Response(xhr.responseText, {status: xhr.status}));
        fail(why);
      });
      xhr.addEventListener("error", () => fail("the connection to the gateway was lost"));
      xhr.addEventListener("abort", () => fail("the upload was stopped"));
      xhr.send(item.file);
    });

    // The listing as the server shows it now (sizes, new folders), swapped in place.
    const refreshListing = async () => {
      try {
        const r = await fetch(location.href, {credentials: "same-origin"});
        if (!r.ok) return;
        const fresh = new DOMParser().parseFromString(await r.text(), "text/html").getElementById("listing");
        const mine = document.getElementById("listing");
        if (fresh && mine) mine.replaceWith(document.importNode(fresh, true));
      } catch (e) { /* the listing stays as it was; a reload shows the new files */ }
    };

    async function run() {
      if (running) return;
      running = true;
      box.hidden = false;
      let item;
      while ((item = items.find(i => i.state === "waiting"))) {
        updateSummary(item);
        await send(item);
        updateOverall();
      }
      running = false;
      updateSummary(null);
      await refreshListing();
      emit("uploads-done", {uploaded: items.filter(i => i.state === "done").map(i => i.rel),
                            failed: items.filter(i => i.state === "failed").map(i => i.rel)});
    }

    const enqueue = (chosen) => {
      if (!chosen.length) return;
      if (!running) {  // a new batch: what finished before makes way
        for (const done of items.filter(i => i.state === "done")) {
          done.li.remove();
          items.splice(items.indexOf(done), 1);
        }
      }
      for (const c of chosen) items.push(makeItem(c));
      updateOverall();
      run();
    };

    filesInput.addEventListener("change", () => {
      enqueue([...filesInput.files].map(file => ({file, rel: file.name})));
      filesInput.value = "";
    });
    folderInput.addEventListener("change", () => {
      enqueue([...folderInput.files].map(file => ({file, rel: file.webkitRelativePath || file.name})));
      folderInput.value = "";
    });
    form.addEventListener("submit", e => {
      e.preventDefault();
      enqueue([...filesInput.files].map(file => ({file, rel: file.name})));
      filesInput.value = "";
    });

    // Drag and drop onto the listing (or the upload box): files, and folders with what is in them.
    for (const zone of [document.getElementById("drop-zone"), area]) {
      zone.addEventListener("dragover", e => {
        if (![...e.dataTransfer.types].includes("Files")) return;
        e.preventDefault();
        e.dataTransfer.dropEffect = "copy";
        zone.classList.add("dragging");
      });
      zone.addEventListener("dragleave", e => {
        if (!zone.contains(e.relatedTarget)) zone.classList.remove("dragging");
      });
      zone.addEventListener("drop", async e => {
        if (![...e.dataTransfer.types].includes("Files")) return;
        e.preventDefault();
        zone.classList.remove("dragging");
        // The entries must be taken while the event lasts; reading them may take longer.
        const entries = [...e.dataTransfer.items]
          .map(i => (i.kind === "file" && i.webkitGetAsEntry ? i.webkitGetAsEntry() : null)).filter(Boolean);
        const files = [...e.dataTransfer.files];
        try {
          enqueue(await droppedFiles(entries, files));
        } catch (err) {
          box.hidden = false;
          summary.textContent = "What was dropped could not be read: try choosing it with Upload files or Upload a folder.";
        }
      });
    }
  }

  // "Go to folder…": the picker, and the page of the folder chosen (a file's own folder).
  function setupGoTo(section) {
    const go = document.getElementById("browse-folders");
    if (!go) return;
    go.hidden = false;
    go.addEventListener("click", () => pick({
      listUrl: section.dataset.filesUrl,
      title: `Go to a folder of ${section.dataset.experimentName}`,
      start: section.dataset.path || "",
      onPick: (path, type) => {
        const folder = type === "file" ? parentOf(path) : path;
        location.href = section.dataset.experimentUrl +
          (folder ? `?path=${folder.split("/").map(encodeURIComponent).join("/")}` : "");
      },
    }));
  }

  document.addEventListener("DOMContentLoaded", () => {
    const section = document.getElementById("data-browser");
    if (!section) return;
    setupUploads(section);
    setupGoTo(section);
  });
})();
