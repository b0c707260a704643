/* The performance page's charts (Chart.js + chartjs-chart-error-bars). The numbers come from the
   page (json_script tags) and are the same as its tables; a group with too few outcomes to judge
   gets no bar and says so in its label, never a 0 % bar. */
(function () {
  "use strict";

  function themed() {
    const c = csx.colors();
    Chart.defaults.color = c.text;
    Chart.defaults.borderColor = c.grid;
    return c;
  }

  function groups(element) {
    const data = csx.data(element.dataset.source);
    const c = themed();
    const labels = data.points.map((p) =>
      p.too_few ? [p.label, data.too_few_text + " (n = " + p.n + ")"] : p.label);
    new Chart(element.querySelector("canvas"), {
      type: "barWithErrorBars",
      data: {
        labels: labels,
        datasets: [{
          label: "win rate %",
          // A too-few group is a point without a value: no bar, no whiskers (the plugin needs an
          // object at every index, a bare null breaks it).
          data: data.points.map((p) => (p.too_few ? { y: null, yMin: null, yMax: null }
                                                  : { y: p.value, yMin: p.low, yMax: p.high })),
          backgroundColor: c.accent,
          errorBarColor: c.text,
          errorBarWhiskerColor: c.text,
        }],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: { y: { min: 0, max: 100, title: { display: true, text: "win rate %" } } },
        plugins: { legend: { display: false } },
      },
    });
  }

  function monthly(element) {
    const data = csx.data(element.dataset.source);
    const c = themed();
    new Chart(element.querySelector("canvas"), {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          { type: "line", label: "win rate %", data: data.win_rate, yAxisID: "rate",
            borderColor: c.accent, backgroundColor: c.accent, spanGaps: false },
          { type: "bar", label: "expectancy %", data: data.expectancy, yAxisID: "pct",
            backgroundColor: data.expectancy.map((v) => (v !== null && v < 0 ? c.down : c.up)) },
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: {
          rate: { position: "left", min: 0, max: 100, title: { display: true, text: "win rate %" } },
          pct: { position: "right", grid: { drawOnChartArea: false },
                 title: { display: true, text: "expectancy %" } },
        },
      },
    });
  }

  function excess(element) {
    const data = csx.data(element.dataset.source);
    const c = themed();
    new Chart(element.querySelector("canvas"), {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [{ label: "excess over BTC %", data: data.excess,
                     backgroundColor: data.excess.map((v) => (v !== null && v < 0 ? c.down : c.up)) }],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: { y: { title: { display: true, text: "excess over BTC %" } } },
        plugins: { legend: { display: false } },
      },
    });
  }

  csx.widget("[data-chart=groups]", groups);
  csx.widget("[data-chart=monthly]", monthly);
  csx.widget("[data-chart=excess]", excess);
})();
