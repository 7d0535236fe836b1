// Health and live metrics, refreshed every second; the chart keeps the
// last two minutes of resident memory, heap and goroutines.
"use strict";
(function () {
  const T = window.Talos;
  const keep = 120;
  const series = [
    { name: "process_resident_memory_bytes", label: "resident memory (MB)", scale: 1 / 1048576, color: "#3b6fd8" },
    { name: "go_memstats_heap_alloc_bytes", label: "heap in use (MB)", scale: 1 / 1048576, color: "#137333" },
    { name: "go_goroutines", label: "goroutines", scale: 1, color: "#8a5a00" },
  ];
  const canvas = document.getElementById("metrics-chart");
  let chart = null;
  if (window.Chart) {
    chart = new window.Chart(canvas, {
      type: "line",
      data: { labels: [], datasets: series.map(function (s) { return { label: s.label, data: [], borderColor: s.color, pointRadius: 0, borderWidth: 2 }; }) },
      options: { animation: false, responsive: true, maintainAspectRatio: false, scales: { y: { beginAtZero: true } } },
    });
  } else {
    T.setText("metrics-error", "The chart library did not load.");
  }
  function value(samples, name) {
    let sum = null;
    for (const s of samples) if (s.name === name) sum = (sum || 0) + s.value;
    return sum;
  }
  function render(v) {
    const h = v.health || {};
    const tbody = document.querySelector("#live-checks tbody");
    T.clear(tbody);
    if (h.error) {
      T.setText("live-health", "Health unavailable: " + h.error);
    } else {
      T.setText("live-health", "Status " + h.status + " · version " + h.version + " · up " + Math.round(h.uptime_s || 0) + " s");
      for (const c of h.checks || []) {
        tbody.appendChild(T.row([c.name + (c.critical ? " (critical)" : ""), c.status, c.detail, (c.latency_ms || 0).toFixed(1) + " ms"], "check-" + c.status));
      }
    }
    T.setText("metrics-error", v.metrics_error || "");
    const samples = v.samples || [];
    if (chart && !v.metrics_error) {
      chart.data.labels.push(new Date(v.time).toLocaleTimeString());
      series.forEach(function (s, i) {
        const x = value(samples, s.name);
        chart.data.datasets[i].data.push(x === null ? null : x * s.scale);
      });
      if (chart.data.labels.length > keep) {
        chart.data.labels.shift();
        for (const d of chart.data.datasets) d.data.shift();
      }
      chart.update("none");
    }
    const st = document.querySelector("#metric-samples tbody");
    T.clear(st);
    for (const s of samples) {
      if (s.name.startsWith("talos_")) st.appendChild(T.row([s.name, s.labels || "", String(s.value)]));
    }
    T.setText("live-status", "Updated " + new Date(v.time).toLocaleTimeString());
  }
  let busy = false;
  async function load() {
    if (busy) return;
    busy = true;
    try {
      render(await T.fetchJSON("/api/metrics"));
    } catch (e) {
      T.setText("live-status", "Cannot load the metrics: " + e.message);
    } finally {
      busy = false;
    }
  }
  load();
  setInterval(load, 1000);
})();
