// Small SVG charts drawn by hand (no library, nothing from a CDN): stacked bar charts with a
// y axis, x labels, and a <title> per bar for the exact numbers.
//
// A chart is drawn at the pixel width it is given on screen (and again when that changes), so
// its text has its real size: the room for the y axis comes from the widest tick label, and x
// labels are thinned out until none touches the next, on a phone as on a desktop.

import { h, svg } from "./dom.js";

const H = 220;
const FONT = 12; // px, as .chart-svg text in app.css
const TITLE_ROOM = 18; // the rotated y-axis title
const GAP = 6; // between a tick label and the axis, and between two x labels
let measurer = null;

/** The width of `text` in the charts' font, measured (not guessed) with a canvas. */
export function textWidth(text) {
  if (!measurer) {
    measurer = document.createElement("canvas").getContext("2d");
    measurer.font = `${FONT}px ${getComputedStyle(document.body).fontFamily || "sans-serif"}`;
  }
  return measurer.measureText(text).width;
}

/** A round tick step (1, 2, 5 x 10^n; counts never get fractional steps) for 4 ticks. */
function tickStep(max) {
  const raw = Math.max(max, 1) / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= raw) return Math.max(1, step * power);
  }
  return Math.max(1, 10 * power);
}

function draw({ bars, series, title, yLabel, labelEvery }, width) {
  const top = 4 * tickStep(Math.max(...bars.map((bar) => bar.values.reduce((a, b) => a + b, 0))));
  const ticks = [0, 1, 2, 3, 4].map((i) => (top * i) / 4);
  const tickText = ticks.map((value) => value.toLocaleString());
  const left = (yLabel ? TITLE_ROOM : 0) + Math.max(...tickText.map(textWidth)) + GAP + 2;
  const pad = { top: 12, right: 10, bottom: 30, left };
  const plotW = Math.max(10, width - pad.left - pad.right);
  const plotH = H - pad.top - pad.bottom;
  const slot = plotW / bars.length;
  const barW = Math.max(1, Math.min(slot * 0.78, 36));
  // Every n-th x label, n large enough that the widest label and a gap fit in n slots.
  const widest = Math.max(...bars.map((bar) => textWidth(bar.label)));
  const every = Math.max(labelEvery, Math.ceil((widest + GAP) / slot));
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${H}`,
    width,
    height: H,
    class: "chart-svg",
    role: "img",
    "aria-label": title,
  });
  ticks.forEach((value, i) => {
    const y = pad.top + plotH - (plotH * i) / 4;
    root.append(
      svg("line", { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: i ? "grid" : "axis" }),
      svg("text", { x: pad.left - GAP, y: y + FONT / 3, class: "tick", "text-anchor": "end", text: tickText[i] }),
    );
  });
  if (yLabel) {
    const middle = pad.top + plotH / 2;
    root.append(svg("text", { x: FONT, y: middle, class: "tick axis-title", transform: `rotate(-90 ${FONT} ${middle})`, "text-anchor": "middle", text: yLabel }));
  }
  let lastRight = -Infinity;
  bars.forEach((bar, index) => {
    const x = pad.left + index * slot + (slot - barW) / 2;
    let y = pad.top + plotH;
    const group = svg("g", { class: "bar" });
    group.append(svg("title", { text: bar.tip || `${bar.label}: ${bar.values.join(" / ")}` }));
    bar.values.forEach((value, s) => {
      if (!value) return;
      const height = (plotH * value) / top;
      y -= height;
      group.append(svg("rect", { x, y, width: barW, height: Math.max(height, 0.5), class: series[s].cls, rx: Math.min(2, barW / 4) }));
    });
    // An invisible full-height target, so thin bars still show their tooltip.
    group.append(svg("rect", { x: pad.left + index * slot, y: pad.top, width: slot, height: plotH, class: "hit" }));
    root.append(group);
    if (index % every === 0) {
      // Kept inside the chart rather than centred past its edges, and skipped if that moved it
      // onto the label before.
      const half = textWidth(bar.label) / 2;
      const centre = Math.min(Math.max(x + barW / 2, pad.left + half), width - half);
      if (centre - half >= lastRight + GAP) {
        lastRight = centre + half;
        root.append(svg("text", { x: centre, y: H - pad.bottom + FONT + 6, class: "tick", "text-anchor": "middle", text: bar.label }));
      }
    }
  });
  return root;
}

/**
 * bars: [{label, tip, values: [number per series]}]; series: [{name, cls}].
 * labelEvery: show at most every n-th x label (more are skipped when they would not fit).
 * Returns a <figure>; its chart is drawn once the figure has a width on screen.
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
  const plot = h("div", { class: "chart-plot" });
  figure.append(plot);
  let drawnAt = 0;
  const observer = new ResizeObserver(() => {
    if (!plot.isConnected) {
      observer.disconnect(); // the view moved on and dropped this chart
      return;
    }
    const width = Math.floor(plot.clientWidth);
    if (width > 0 && width !== drawnAt) {
      drawnAt = width;
      plot.replaceChildren(draw({ bars, series, title, yLabel, labelEvery }, width));
    }
  });
  observer.observe(plot);
  return figure;
}
