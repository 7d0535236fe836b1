// Shared helpers of the dashboard's pages. Every string from the server is
// put into the page with textContent: never as HTML.
"use strict";
window.Talos = (function () {
  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function setText(id, text) {
    const e = document.getElementById(id);
    if (e) e.textContent = text === undefined || text === null ? "" : String(text);
  }
  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }
  function row(cells, cls) {
    const tr = el("tr", undefined, cls);
    for (const c of cells) {
      if (c instanceof Node) {
        const td = el("td");
        td.appendChild(c);
        tr.appendChild(td);
      } else {
        tr.appendChild(el("td", c));
      }
    }
    return tr;
  }
  async function fetchJSON(url) {
    const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!r.ok) throw new Error(url + ": HTTP " + r.status);
    return r.json();
  }
  function fmtTime(s) {
    if (!s) return "";
    const d = new Date(s);
    return isNaN(d) ? String(s) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }
  return { el, setText, clear, row, fetchJSON, fmtTime };
})();
