/* Dashboard charts, drawn with the vendored Chart.js (no eval, no inline script: see the CSP).

Each <canvas data-chart="ID"> reads its data from <script type="application/json" id="ID">,
written by app/views/dashboards.py: {chart, label, labels, values, colors, color, locale,
currency, decimals} and, for a pareto, {cumulative, cumulative_label, cumulative_color}.
Labels are user data: Chart.js draws them as canvas text, never as HTML.
*/
(function () {
  "use strict";

  function numberFormat(data, extra) {
    var options = data.currency
      ? { style: "currency", currency: data.currency }
      : { maximumFractionDigits: data.decimals };
    Object.keys(extra || {}).forEach(function (key) { options[key] = extra[key]; });
    try {
      return new Intl.NumberFormat(data.locale, options);
    } catch (error) {
      return new Intl.NumberFormat(data.locale);
    }
  }

  function formatters(data) {
    var full = numberFormat(data);
    var compact = numberFormat(data, { notation: "compact", maximumFractionDigits: 1 });
    return {
      full: function (value) { return value === null || value === undefined ? "—" : full.format(value); },
      axis: function (value) { return compact.format(value); }
    };
  }

  function translucent(colour) {
    return /^#[0-9a-fA-F]{6}$/.test(colour) ? colour + "33" : colour;
  }

  // Counts never get ticks between whole numbers.
  function valueAxis(data, format) {
    var ticks = { callback: format.axis };
    if (data.decimals === 0) ticks.precision = 0;
    return { beginAtZero: true, ticks: ticks };
  }

  function tooltipValue(format, pick) {
    return {
      callbacks: {
        label: function (context) {
          var name = context.dataset.label ? context.dataset.label + ": " : "";
          return name + format(pick(context));
        }
      }
    };
  }

  function barOrLine(data, format) {
    var line = data.chart === "line";
    var colours = data.colors.length ? data.colors : data.color;
    return {
      type: line ? "line" : "bar",
      data: {
        labels: data.labels,
        datasets: [{
          label: data.label,
          data: data.values,
          backgroundColor: line ? translucent(data.color) : colours,
          borderColor: line ? data.color : colours,
          pointBackgroundColor: line && data.colors.length ? data.colors : data.color,
          fill: line,
          cubicInterpolationMode: "monotone"
        }]
      },
      options: {
        plugins: {
          legend: { display: false },
          tooltip: tooltipValue(format.full, function (c) { return c.parsed.y; })
        },
        scales: { y: valueAxis(data, format) }
      }
    };
  }

  function pie(data, format) {
    return {
      type: "pie",
      data: {
        labels: data.labels,
        datasets: [{ label: data.label, data: data.values, backgroundColor: data.colors }]
      },
      options: {
        plugins: {
          legend: { position: "right" },
          tooltip: tooltipValue(format.full, function (c) { return c.parsed; })
        }
      }
    };
  }

  // Chart.js has no funnel: bars centred on zero, one per stage in option order, as wide as
  // their value.
  function funnel(data, format) {
    var widest = Math.max.apply(null, data.values.map(function (v) { return v || 0; }).concat([0]));
    var half = widest / 2 || 1;
    return {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [{
          label: data.label,
          data: data.values.map(function (v) { return [-(v || 0) / 2, (v || 0) / 2]; }),
          backgroundColor: data.colors.length ? data.colors : data.color,
          barPercentage: 1,
          categoryPercentage: 0.85
        }]
      },
      options: {
        indexAxis: "y",
        plugins: {
          legend: { display: false },
          tooltip: tooltipValue(format.full, function (c) { return data.values[c.dataIndex]; })
        },
        scales: {
          x: { display: false, min: -half, max: half },
          y: { grid: { display: false } }
        }
      }
    };
  }

  function pareto(data, format) {
    return {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          {
            type: "line",
            label: data.cumulative_label,
            data: data.cumulative,
            yAxisID: "share",
            borderColor: data.cumulative_color,
            backgroundColor: data.cumulative_color,
            tension: 0,
            order: 0
          },
          {
            label: data.label,
            data: data.values,
            yAxisID: "y",
            backgroundColor: data.colors,
            order: 1
          }
        ]
      },
      options: {
        plugins: {
          tooltip: {
            callbacks: {
              label: function (c) {
                var value = c.dataset.yAxisID === "share"
                  ? (c.parsed.y === null ? "—" : c.parsed.y + "%")
                  : format.full(c.parsed.y);
                return c.dataset.label + ": " + value;
              }
            }
          }
        },
        scales: {
          y: valueAxis(data, format),
          share: {
            position: "right",
            min: 0,
            max: 100,
            grid: { drawOnChartArea: false },
            ticks: { callback: function (v) { return v + "%"; } }
          }
        }
      }
    };
  }

  var BUILDERS = { bar: barOrLine, line: barOrLine, pie: pie, funnel: funnel, pareto: pareto };

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source) return;
    var data = JSON.parse(source.textContent);
    var build = BUILDERS[data.chart] || barOrLine;
    var config = build(data, formatters(data));
    config.options.responsive = true;
    config.options.maintainAspectRatio = false;
    canvas.dataset.chartReady = "1";
    new Chart(canvas, config);
  }

  function drawAll(root) {
    if (typeof Chart === "undefined") return;
    root.querySelectorAll("canvas[data-chart]:not([data-chart-ready])").forEach(draw);
  }

  if (typeof Chart !== "undefined") {
    Chart.defaults.font.family = window.getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = "#3e4c59";
    if (window.matchMedia("(prefers-reduced-motion: reduce)").matches) {
      Chart.defaults.animation = false;
    } else {
      Chart.defaults.animation.duration = 400;
    }
  }
  drawAll(document);
  // Widgets swapped in by htmx (a refresh) get their charts too; the charts of the widgets
  // they replace are let go.
  document.addEventListener("htmx:load", function (event) { drawAll(event.detail.elt); });
  document.addEventListener("htmx:beforeCleanupElement", function (event) {
    var chart = typeof Chart !== "undefined" && event.target.matches("canvas[data-chart]")
      ? Chart.getChart(event.target) : null;
    if (chart) chart.destroy();
  });
})();
