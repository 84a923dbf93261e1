// Small SVG charts drawn by hand (no library, nothing from a CDN): stacked bar charts with a
// y axis, a few x labels, and a <title> per bar for the exact numbers.

import { h, svg } from "./dom.js";

const W = 640;
const H = 220;
const PAD = { top: 12, right: 10, bottom: 34, left: 44 };

/** A round tick step (1, 2, 5 x 10^n; counts never get fractional steps) for 4 ticks. */
function tickStep(max) {
  const raw = Math.max(max, 1) / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= raw) return Math.max(1, step * power);
  }
  return Math.max(1, 10 * power);
}

/**
 * bars: [{label, tip, values: [number per series]}]; series: [{name, cls}].
 * labelEvery: show every n-th x label. Returns a <figure>.
 */
export function barChart({ bars, series, title, yLabel, labelEvery = 1, empty = "No data yet." }) {
  const total = bars.reduce((sum, bar) => sum + bar.values.reduce((a, b) => a + b, 0), 0);
  const figure = h("figure", { class: "chart" });
  const legend = h(
    "figcaption",
    { class: "legend" },
    h("span", { class: "chart-title" }, title),
    series.length > 1
      ? series.map((s) => h("span", { class: "key" }, h("span", { class: ["swatch", s.cls] }), s.name))
      : null,
  );
  figure.append(legend);
  if (!bars.length || total === 0) {
    figure.append(h("div", { class: "chart-empty muted" }, empty));
    return figure;
  }
  const top = 4 * tickStep(Math.max(...bars.map((bar) => bar.values.reduce((a, b) => a + b, 0))));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / bars.length;
  const barW = Math.max(1, Math.min(slot * 0.78, 36));
  const root = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "chart-svg",
    role: "img",
    "aria-label": title,
    preserveAspectRatio: "xMidYMid meet",
  });
  for (let i = 0; i <= 4; i++) {
    const value = (top * i) / 4;
    const y = PAD.top + plotH - (plotH * i) / 4;
    root.append(
      svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: i ? "grid" : "axis" }),
      svg("text", { x: PAD.left - 6, y: y + 4, class: "tick", "text-anchor": "end", text: value.toLocaleString() }),
    );
  }
  if (yLabel) {
    root.append(svg("text", { x: 12, y: PAD.top + plotH / 2, class: "tick", transform: `rotate(-90 12 ${PAD.top + plotH / 2})`, "text-anchor": "middle", text: yLabel }));
  }
  bars.forEach((bar, index) => {
    const x = PAD.left + index * slot + (slot - barW) / 2;
    let y = PAD.top + plotH;
    const group = svg("g", { class: "bar" });
    group.append(svg("title", { text: bar.tip || `${bar.label}: ${bar.values.join(" / ")}` }));
    bar.values.forEach((value, s) => {
      if (!value) return;
      const height = (plotH * value) / top;
      y -= height;
      group.append(svg("rect", { x, y, width: barW, height: Math.max(height, 0.5), class: series[s].cls, rx: Math.min(2, barW / 4) }));
    });
    // An invisible full-height target, so thin bars still show their tooltip.
    group.append(svg("rect", { x: PAD.left + index * slot, y: PAD.top, width: slot, height: plotH, class: "hit" }));
    root.append(group);
    if (index % labelEvery === 0) {
      root.append(svg("text", { x: x + barW / 2, y: H - PAD.bottom + 16, class: "tick", "text-anchor": "middle", text: bar.label }));
    }
  });
  figure.append(root);
  return figure;
}
