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
      for (const r of v.rows || []) tb.appendChild(T.row([r.day, r.model, String(r.prompt), String(r.completion), String(r.prompt + r.completion)]));
    } catch (e) {
      T.setText("tokens-error", "Cannot load the token counts: " + e.message);
    }
  }
  load();
  setInterval(load, 5000);
})();
