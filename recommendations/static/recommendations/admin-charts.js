/* The model registry's admin charts (Chart.js from the shop's own static files, no CDN). Each
 * <canvas data-chart="ID"> draws the chart whose spec is in <script id="ID" type="application/json">
 * (recommendations/admin_charts.py). A training run's page polls its progress while it runs; a
 * tuning run's page reloads while the run is on. */
(function () {
  "use strict";
  var COLOURS = ["#417690", "#e8a33d", "#5b8c5a", "#ba2121", "#8e6cb0", "#79aec8", "#c9792e", "#666666"];
  var charts = {};

  function percent(v) { return v == null ? "-" : (100 * v).toFixed(1) + "%"; }

  function axis(spec) {
    var a = { beginAtZero: true, title: { display: true, text: spec.title } };
    if (spec.percent) { a.ticks = { callback: percent }; }
    return a;
  }

  function config(spec) {
    var scales = { y: axis(spec.y) };
    if (spec.y2) { scales.y2 = Object.assign(axis(spec.y2), { position: "right", grid: { drawOnChartArea: false } }); }
    var datasets = spec.datasets.map(function (d, i) {
      var colour = COLOURS[i % COLOURS.length];
      var kind = d.kind === "point" ? "line" : (d.kind || spec.type);
      var out = { label: d.label, data: d.data, type: kind, yAxisID: d.axis || "y", backgroundColor: colour,
                  borderColor: colour, spanGaps: false, pointRadius: kind === "line" ? 3 : undefined };
      if (d.kind === "point") { Object.assign(out, { showLine: false, pointRadius: 6, pointStyle: "rectRot" }); }
      if (kind === "line") { out.order = -1; }  // lines over bars
      return out;
    });
    return {
      type: spec.type,
      data: { labels: spec.labels, datasets: datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, scales: scales,
        plugins: {
          title: { display: true, text: spec.title },
          tooltip: { callbacks: { label: function (ctx) {
            var s = ctx.dataset.yAxisID === "y2" ? spec.y2 : spec.y;
            var v = ctx.parsed.y;
            return ctx.dataset.label + ": " + (s && s.percent ? percent(v) : (v == null ? "-" : +v.toFixed(4)));
          } } }
        }
      }
    };
  }

  function draw(canvas, spec) {
    var id = canvas.getAttribute("data-chart");
    if (charts[id]) { charts[id].destroy(); }
    charts[id] = new window.Chart(canvas, config(spec));
    canvas.setAttribute("data-drawn", "true");
  }

  function spec(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function drawAll() {
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var s = spec(canvas.getAttribute("data-chart"));
      if (s) { draw(canvas, s); }
    });
  }

  // A training run's page: progress, stage, loss chart and log follow the run until it ends.
  function follow(box) {
    var url = box.getAttribute("data-progress-url");
    var timer = null;
    function update(state) {
      box.querySelector("progress").value = state.progress;
      box.querySelector(".run-stage").textContent = state.stage + " (" + state.status + ")";
      var log = document.getElementById("training-log");
      if (log) { log.textContent = state.log_tail; }
      var canvas = document.querySelector('canvas[data-chart="training-loss"]');
      if (canvas) { draw(canvas, state.loss_chart); }
      if (!state.active) {
        window.clearInterval(timer);
        if (box.getAttribute("data-active") === "true") { window.location.reload(); }  // the final fields
      }
    }
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (state) { if (state) { update(state); } })
        .catch(function () { /* a missed poll is retried at the next tick */ });
    }
    if (box.getAttribute("data-active") === "true") { timer = window.setInterval(poll, 2000); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawAll();
    document.querySelectorAll("[data-progress-url]").forEach(follow);
    // A tuning run's page while the run is on: reload every 10 s (its trials, chart and best so far).
    if (document.querySelector('.tuning-actions[data-active="true"]')) {
      window.setTimeout(function () { window.location.reload(); }, 10000);
    }
  });
})();
