// The stacked chart of usage over time (Chart.js, vendored, loaded before this module).

import { bucketLabel } from "./time.js";
import { formatNumber, usedField } from "./dom.js";

const COLORS = ["#1f4fd1", "#e07a10", "#1a8f5a", "#b83280", "#6b4fbb", "#0f8a9d", "#b7950b", "#c0392b"];

let chart = null;

/** Per cost key, the amounts of each bucket in one unit. */
function datasets(buckets, unit) {
  const field = usedField(unit);
  const keys = [...new Set(buckets.flatMap((b) => b.breakdownByCostKey.map((e) => e.costKey)))].sort();
  // A cost key keeps its colour whichever unit is shown; keys with nothing in this unit are left out.
  return keys
    .map((costKey, i) => ({
      label: costKey,
      backgroundColor: COLORS[i % COLORS.length],
      borderWidth: 0,
      data: buckets.map((b) => b.breakdownByCostKey.find((e) => e.costKey === costKey)?.[field] ?? 0),
    }))
    .filter((set) => set.data.some((value) => value > 0));
}

function options(unit) {
  return {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    interaction: { mode: "index", intersect: false },
    scales: {
      x: { stacked: true, ticks: { maxRotation: 0, autoSkip: true, autoSkipPadding: 12 } },
      y: {
        stacked: true, beginAtZero: true,
        title: { display: true, text: unit },
        ticks: { callback: (value) => formatNumber(value) },
      },
    },
    plugins: {
      legend: { position: "bottom", labels: { boxWidth: 12 } },
      tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${formatNumber(item.raw, 6)} ${unit}` } },
    },
  };
}

/** Draw (or redraw in place) the chart of a series' buckets. */
export function drawChart(canvas, series, unit) {
  const labels = series.buckets.map((b) => bucketLabel(b.start, series.granularity, series.timeZone));
  const data = { labels, datasets: datasets(series.buckets, unit) };
  if (chart && chart.canvas === canvas) {
    chart.data = data;
    chart.options = options(unit);
    chart.update("none");
  } else {
    chart?.destroy();
    const { defaults } = window.Chart;
    defaults.font.family = getComputedStyle(document.body).fontFamily;
    defaults.font.size = 13;
    defaults.color = "#3d4658";
    chart = new window.Chart(canvas, { type: "bar", data, options: options(unit) });
  }
  const total = data.datasets.reduce((sum, set) => sum + set.data.reduce((a, b) => a + b, 0), 0);
  canvas.setAttribute(
    "aria-label",
    `Stacked bar chart of ${unit} used per ${series.granularity} by cost key, ` +
      `${labels.length} buckets, ${formatNumber(total)} ${unit} in all`,
  );
  return { buckets: labels.length, empty: total === 0 };
}

export function destroyChart() {
  chart?.destroy();
  chart = null;
}
