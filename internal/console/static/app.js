// Cairn console: the little behaviour that server-rendered pages cannot
// have on their own. Everything works without it except live mode, the
// column chooser and the chart.
(function () {
  "use strict";
  var csrf = document.body.getAttribute("data-csrf") || "";

  // htmx requests carry the session's CSRF token.
  document.addEventListener("htmx:configRequest", function (e) {
    if (csrf) e.detail.headers["X-CSRF-Token"] = csrf;
    var elt = e.detail.elt;
    if (elt && elt.id === "rows") {
      // Live mode asks for events newer than the newest row shown.
      var first = elt.querySelector("tr[data-t]");
      if (first) {
        var t = first.getAttribute("data-t"), seen = [];
        elt.querySelectorAll('tr[data-t="' + t + '"]').forEach(function (r) { seen.push(r.getAttribute("data-id")); });
        e.detail.parameters.after = t;
        e.detail.parameters.seen = seen.join(",");
      }
    }
  });

  // Region picker switches at once.
  document.querySelectorAll("[data-autosubmit]").forEach(function (el) {
    el.addEventListener("change", function () { el.form.submit(); });
  });

  // Remove a filter row.
  document.querySelectorAll("[data-remove-row]").forEach(function (b) {
    b.addEventListener("click", function () {
      var row = b.closest(".attr-row"), form = b.closest("form");
      row.remove();
      form.submit();
    });
  });

  // Column chooser, remembered in this browser.
  var table = document.getElementById("events-table");
  var KEY = "cairn.columns";
  function applyColumns() {
    var saved = {};
    try { saved = JSON.parse(localStorage.getItem(KEY) || "{}"); } catch (_) {}
    document.querySelectorAll("[data-col]").forEach(function (cb) {
      var id = cb.getAttribute("data-col");
      var on = id in saved ? saved[id] : cb.hasAttribute("data-default");
      cb.checked = on;
      if (table) table.classList.toggle("hide-" + id, !on);
    });
  }
  document.querySelectorAll("[data-col]").forEach(function (cb) {
    cb.addEventListener("change", function () {
      var saved = {};
      try { saved = JSON.parse(localStorage.getItem(KEY) || "{}"); } catch (_) {}
      saved[cb.getAttribute("data-col")] = cb.checked;
      localStorage.setItem(KEY, JSON.stringify(saved));
      applyColumns();
    });
  });
  applyColumns();
  // The columns menu closes with Escape or a click elsewhere.
  var menu = document.getElementById("columns");
  if (menu) {
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && menu.open) { menu.open = false; menu.querySelector("summary").focus(); }
    });
    document.addEventListener("click", function (e) { if (menu.open && !menu.contains(e.target)) menu.open = false; });
  }

  // Live mode: poll every 2 s and put new rows on top.
  var rows = document.getElementById("rows");
  if (rows && rows.getAttribute("data-live") && window.htmx) {
    var status = document.getElementById("live-status");
    rows.setAttribute("hx-get", rows.getAttribute("data-live"));
    rows.setAttribute("hx-trigger", "every 2s");
    rows.setAttribute("hx-swap", "afterbegin");
    rows.addEventListener("htmx:beforeSwap", function (e) {
      if (e.detail.xhr.status === 204) e.detail.shouldSwap = false;
    });
    rows.addEventListener("htmx:afterSwap", function () {
      var n = 0;
      rows.querySelectorAll("tr:not(.seen)").forEach(function (r) { r.classList.add("seen"); if (rows.dataset.ready) { r.classList.add("new"); n++; } });
      rows.dataset.ready = "1";
      if (n && status) status.textContent = n + (n === 1 ? " new event" : " new events") + " at " + new Date().toISOString().slice(11, 19) + " UTC";
      var empty = document.querySelector(".empty");
      if (n && empty) empty.remove();
    });
    rows.querySelectorAll("tr").forEach(function (r) { r.classList.add("seen"); });
    rows.dataset.ready = "1";
    if (status) status.textContent = "Watching for new events…";
    htmx.process(rows);
  }

  // Copy the event record.
  document.querySelectorAll("[data-copy]").forEach(function (b) {
    b.addEventListener("click", function () {
      var el = document.querySelector(b.getAttribute("data-copy"));
      if (el && navigator.clipboard) navigator.clipboard.writeText(el.textContent).then(function () { b.textContent = "Copied"; });
    });
  });

  // Events-per-minute chart.
  var chartEl = document.getElementById("chart"), dataEl = document.getElementById("chart-data");
  if (chartEl && dataEl && window.uPlot) {
    var d = JSON.parse(dataEl.textContent);
    var draw = function () {
      chartEl.innerHTML = "";
      var w = chartEl.clientWidth || 600;
      new uPlot({
        width: w, height: 220, legend: { show: false }, cursor: { y: false },
        scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(5, max * 1.15)]; } } },
        axes: [
          { stroke: "#6b7585", grid: { stroke: "#eef0f3" }, ticks: { stroke: "#e2e6eb" },
            values: function (u, ticks) { return ticks.map(function (t) { return new Date(t * 1e3).toISOString().slice(11, 16); }); } },
          { stroke: "#6b7585", grid: { stroke: "#eef0f3" }, ticks: { stroke: "#e2e6eb" }, size: 44 }
        ],
        series: [{ label: "Minute (UTC)" }, { label: "Events", stroke: "#2563eb", width: 1.5, fill: "rgba(37,99,235,.12)", points: { show: false } }],
        tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); }
      }, [d.t, d.n], chartEl);
    };
    draw();
    var pending;
    window.addEventListener("resize", function () { clearTimeout(pending); pending = setTimeout(draw, 100); });
  }

  // Lake dashboard widgets: line and bar charts of a query's results, the
  // first column labelling the x axis. Drawn again when a refresh's poll
  // swaps the widgets in, and on resize.
  var palette = ["#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2"];
  function drawLakeCharts() {
    if (!window.uPlot) return;
    document.querySelectorAll(".lake-chart[data-chart]").forEach(function (el) {
      var d = JSON.parse(el.getAttribute("data-chart")), xs = d.labels.map(function (_, i) { return i; });
      var bars = d.kind === "bar" && uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.7, 60] }) : null;
      var series = [{ label: "row" }], data = [xs];
      d.series.forEach(function (s, i) {
        var c = palette[i % palette.length];
        series.push({ label: s.name, stroke: c, width: 1.5, fill: bars ? c + "cc" : c + "1f", paths: bars || undefined, points: { show: !bars && xs.length < 40 } });
        data.push(s.values);
      });
      el.innerHTML = "";
      new uPlot({
        width: el.clientWidth || 500, height: 260, legend: { show: d.series.length > 1 }, cursor: { y: false },
        scales: { x: { time: false, range: function (u, min, max) { return bars ? [min - 0.5, max + 0.5] : [min, max]; } },
                  y: { range: function (u, min, max) { return [Math.min(0, min), Math.max(1, max * 1.15)]; } } },
        axes: [
          { stroke: "#6b7585", grid: { show: false }, ticks: { stroke: "#e2e6eb" }, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500],
            values: function (u, ticks) { return ticks.map(function (t) { var l = d.labels[t]; return l === undefined ? "" : (l.length > 14 ? l.slice(0, 13) + "…" : l); }); } },
          { stroke: "#6b7585", grid: { stroke: "#eef0f3" }, ticks: { stroke: "#e2e6eb" }, size: 50 }
        ],
        series: series
      }, data, el);
    });
  }
  drawLakeCharts();
  document.addEventListener("htmx:afterSettle", drawLakeCharts);
  var lakePending;
  window.addEventListener("resize", function () { clearTimeout(lakePending); lakePending = setTimeout(drawLakeCharts, 100); });
})();
