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
  // The CSRF token, fetched once per page from /api/session.
  let csrf = null;
  async function token() {
    if (csrf === null) csrf = (await fetchJSON("/api/session")).csrf;
    return csrf;
  }
  // postJSON sends body as JSON with the CSRF token; it returns the HTTP
  // status and the decoded answer.
  async function postJSON(url, body, extraHeaders) {
    const headers = Object.assign({ "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": await token() }, extraHeaders || {});
    const r = await fetch(url, { method: "POST", credentials: "same-origin", headers, body: JSON.stringify(body) });
    let data = {};
    try { data = await r.json(); } catch (e) { /* not JSON */ }
    return { status: r.status, data };
  }
  const pages = [["/", "Overview"], ["/live", "Health & metrics"], ["/chat", "Chat"], ["/logs", "Logs"], ["/security", "Security"],
    ["/memory", "Memory"], ["/tokens", "Tokens"], ["/dreams", "Dreams"], ["/skills", "Skills"]];
  function nav() {
    const n = document.querySelector("nav");
    if (!n) return;
    clear(n);
    n.appendChild(el("span", "Talos", "brand"));
    for (const [href, name] of pages) {
      const a = el("a", name, location.pathname === href ? "current" : undefined);
      a.href = href;
      n.appendChild(a);
    }
  }
  nav();
  function fmtTime(s) {
    if (!s) return "";
    const d = new Date(s);
    return isNaN(d) ? String(s) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }
  return { el, setText, clear, row, fetchJSON, fmtTime, token, postJSON };
})();
