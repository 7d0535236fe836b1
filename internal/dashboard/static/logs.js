// Live logs: the daemon's lines as server-sent events, filtered here by
// tier, level and text. Every field is put into the page as text.
"use strict";
(function () {
  const T = window.Talos;
  const maxRows = 1000;
  const levels = { DEBUG: 0, INFO: 1, WARN: 2, ERROR: 3 };
  const tbody = document.querySelector("#log-lines tbody");
  const fTier = document.getElementById("f-tier");
  const fLevel = document.getElementById("f-level");
  const fText = document.getElementById("f-text");
  const pauseBtn = document.getElementById("f-pause");
  let paused = false;
  const lines = [];

  function levelOf(l) {
    const base = String(l).replace(/[+-]\d+$/, "");
    return base in levels ? levels[base] : 1;
  }
  function matches(l) {
    if (fTier.value && String(l.tier) !== fTier.value) return false;
    if (levelOf(l.level) < levels[fLevel.value]) return false;
    const q = fText.value.trim().toLowerCase();
    if (q && (l.msg + " " + (l.attrs || "") + " " + (l.correlation_id || "")).toLowerCase().indexOf(q) < 0) return false;
    return true;
  }
  function rowOf(l) {
    return T.row([T.fmtTime(l.time), String(l.tier), l.level, l.msg, l.attrs || "", l.correlation_id || ""], "lvl-" + String(l.level).replace(/[+-]\d+$/, ""));
  }
  function redraw() {
    T.clear(tbody);
    for (let i = lines.length - 1; i >= 0; i--) if (matches(lines[i])) tbody.appendChild(rowOf(lines[i]));
  }
  function add(l) {
    lines.push(l);
    if (lines.length > maxRows) lines.shift();
    if (paused || !matches(l)) return;
    tbody.insertBefore(rowOf(l), tbody.firstChild);
    while (tbody.children.length > maxRows) tbody.removeChild(tbody.lastChild);
  }
  for (const f of [fTier, fLevel]) f.addEventListener("change", redraw);
  fText.addEventListener("input", redraw);
  pauseBtn.addEventListener("click", function () {
    paused = !paused;
    pauseBtn.textContent = paused ? "Resume" : "Pause";
    if (!paused) redraw();
  });

  let last = 0;
  function connect() {
    const es = new EventSource("/api/logs/stream?after=" + last);
    es.addEventListener("open", function () { T.setText("logs-status", "live"); });
    es.addEventListener("line", function (ev) {
      const l = JSON.parse(ev.data);
      last = l.seq;
      add(l);
    });
    es.addEventListener("unavailable", function (ev) {
      T.setText("logs-status", "Logs unavailable: " + JSON.parse(ev.data).error);
      es.close();
    });
    es.addEventListener("error", function () {
      if (es.readyState === EventSource.CLOSED) return;
      T.setText("logs-status", "reconnecting…");
    });
  }
  connect();
})();
