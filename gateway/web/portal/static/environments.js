// Environments: the set-up lines of each version, highlighted as bash by the vendored
// highlight.js (static/vendor/highlight). Without JavaScript, or if it did not load,
// they stay a plain <pre> that reads the same.
"use strict";

function highlightSetupLines(root) {
  if (!window.hljs) return;
  // highlight.js reads the element's text and writes back escaped markup of its own
  // (class names only, no style attributes, so the page's CSP holds).
  root.querySelectorAll("pre code.language-bash").forEach(el => window.hljs.highlightElement(el));
}

document.addEventListener("DOMContentLoaded", () => highlightSetupLines(document));
