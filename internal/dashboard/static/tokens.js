// Tokens per model and day, refreshed every 5 s.
"use strict";
(function () {
  const T = window.Talos;
  async function load() {
    try {
      const v = await T.fetchJSON("/api/tokens");
      T.setText("tokens-error", v.error || (v.rows.length ? "" : "No tokens counted yet."));
      const tb = document.querySelector("#tokens tbody");
      T.clear(tb);
      for (const r of v.rows || []) {
        const total = r.total || r.prompt + r.completion;
        tb.appendChild(T.row([r.day, r.model, r.split ? String(r.prompt) : "–", r.split ? String(r.completion) : "–", String(total)]));
      }
    } catch (e) {
      T.setText("tokens-error", "Cannot load the token counts: " + e.message);
    }
  }
  load();
  setInterval(load, 5000);
})();
