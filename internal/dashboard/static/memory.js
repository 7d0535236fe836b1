// Memory: statistics, search (results as text), prune and restore.
"use strict";
(function () {
  const T = window.Talos;
  async function stats() {
    try {
      const v = await T.fetchJSON("/api/memory");
      T.setText("memory-error", v.error || "");
      const s = v.stats;
      T.setText("memory-stats", s ? s.count + " memories of " + s.ceiling + " (pruned above " + s.prune_trigger + " down to " + s.prune_target + ") · store " + s.store + " · archive " + s.archive : "");
    } catch (e) {
      T.setText("memory-error", "Cannot load the statistics: " + e.message);
    }
  }
  document.getElementById("search-form").addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const q = document.getElementById("search-q").value;
    const tb = document.querySelector("#hits tbody");
    T.clear(tb);
    try {
      const r = await fetch("/api/memory/search?q=" + encodeURIComponent(q), { credentials: "same-origin" });
      const v = await r.json();
      T.setText("search-error", v.error || (v.hits.length ? "" : "Nothing found."));
      for (const h of v.hits || []) tb.appendChild(T.row([h.id, h.similarity.toFixed(3), h.source, h.trusted ? "trusted" : "untrusted", h.text]));
    } catch (e) {
      T.setText("search-error", "Search failed: " + e.message);
    }
  });
  async function act(url, body) {
    T.setText("memory-action", "working…");
    const r = await T.postJSON(url, body);
    T.setText("memory-action", r.data.error ? "Failed: " + r.data.error : r.data.result || ("HTTP " + r.status));
    stats();
  }
  document.getElementById("prune").addEventListener("click", function () {
    if (window.confirm("Prune now? The least relevant memories above the threshold are archived, then deleted.")) act("/api/memory/prune", {});
  });
  document.getElementById("restore").addEventListener("click", function () {
    act("/api/memory/restore", { run: document.getElementById("restore-run").value.trim() });
  });
  stats();
})();
