// Statistics per worker: counts, failure rate, run-time percentiles, a run-time distribution
// chart (from the log-scale histogram) and a throughput chart (attempts ended per minute).

import { api } from "../api.js";
import { barChart } from "../charts.js";
import { h, keepFocus, replace, singleFlight, throttle } from "../dom.js";
import * as fmt from "../format.js";
import { loadWorkers, onEvent } from "../state.js";

const HIST_BASE = 1.1; // tasky/store/histogram.py: bucket b holds [1.1^b, 1.1^(b+1)) ms
const MAX_BARS = 24;
const OUTCOMES = [
  { name: "Completed", cls: "fill-completed" },
  { name: "Failed", cls: "fill-failed" },
  { name: "Canceled", cls: "fill-canceled" },
];

/** Merge the fine buckets (10% wide) into at most MAX_BARS bars of equal log width. */
export function histogramBars(histogram) {
  // The API gives [FromSeconds, ToSeconds) buckets; the bucket's index is recovered from its
  // lower bound (FromSeconds = HIST_BASE^b ms), so bars can be merged on the same log scale.
  const buckets = (histogram || []).map((bucket) => [
    Math.round(Math.log(bucket.FromSeconds * 1000) / Math.log(HIST_BASE)),
    bucket.Count,
  ]);
  if (!buckets.length) return [];
  let low = Math.min(...buckets.map(([b]) => b));
  let high = Math.max(...buckets.map(([b]) => b));
  // Some room either side, so that a single bucket still reads as a distribution.
  const pad = Math.max(0, Math.ceil((16 - (high - low + 1)) / 2));
  low -= pad;
  high += pad;
  const width = Math.max(1, Math.ceil((high - low + 1) / MAX_BARS));
  const bars = [];
  for (let start = low; start <= high; start += width) {
    const n = buckets.filter(([b]) => b >= start && b < start + width).reduce((sum, [, c]) => sum + c, 0);
    const from = HIST_BASE ** start / 1000;
    const to = HIST_BASE ** (start + width) / 1000;
    bars.push({ label: fmt.shortDuration(from), tip: `${fmt.shortDuration(from)}–${fmt.shortDuration(to)}: ${n} tasks`, values: [n] });
  }
  return bars;
}

function throughputBars(data) {
  return data.Minutes.map((m) => {
    const label = new Date(m.Time * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
    return {
      label,
      tip: `${label}: ${m.Completed} completed, ${m.Failed} failed, ${m.Canceled} canceled`,
      values: [m.Completed, m.Failed, m.Canceled],
    };
  });
}

function number(label, value, cls) {
  return h("div", { class: ["stat", cls] }, h("span", { class: "stat-value" }, value), h("span", { class: "stat-label" }, label));
}

function rateText(rate) {
  return rate === null || rate === undefined ? "—" : fmt.percent(rate);
}

function overview(all, selected, onSelect) {
  const body = h("tbody");
  for (const stats of all) {
    const by = stats.ByStatus || {};
    const row = h(
      "tr",
      {
        class: ["clickable", stats.Worker === selected && "selected", !stats.Total && "idle"],
        dataset: { worker: stats.Worker, key: stats.Worker },
        tabindex: "0",
        "aria-selected": stats.Worker === selected ? "true" : "false",
      },
      h("th", { scope: "row", dataset: { label: "Worker" } }, stats.Worker),
      h("td", { dataset: { label: "Total" } }, fmt.count(stats.Total)),
      h("td", { class: "n-completed", dataset: { label: "Completed" } }, fmt.count(by.Completed)),
      h("td", { class: "n-failed", dataset: { label: "Failed" } }, fmt.count(by.Failed)),
      h("td", { dataset: { label: "Failure rate" }, class: stats.FailureRate ? "bad" : null }, rateText(stats.FailureRate)),
      h("td", { class: "n-running", dataset: { label: "Running" } }, fmt.count(by.Running)),
      h("td", { dataset: { label: "Queued / paused" } }, fmt.count((by.Queued || 0) + (by.Paused || 0))),
      h("td", { dataset: { label: "p50" } }, fmt.duration((stats.RunTimePercentilesSeconds || {}).p50)),
    );
    const pick = () => onSelect(stats.Worker);
    row.addEventListener("click", pick);
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        pick();
      }
    });
    body.append(row);
  }
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "overview", id: "stats-overview" },
      h("thead", null, h("tr", null, ["Worker", "Total", "Completed", "Failed", "Failure rate", "Running", "Queued / paused", "p50"].map((t) => h("th", { scope: "col" }, t)))),
      body,
    ),
  );
}

function workerCard(stats, throughput) {
  const by = stats.ByStatus || {};
  const p = stats.RunTimePercentilesSeconds || {};
  return h(
    "section",
    { class: "card stats-card", id: "stats-detail", dataset: { worker: stats.Worker } },
    h("div", { class: "card-head" }, h("h2", null, stats.Worker), h("a", { href: `#/tasks?worker=${encodeURIComponent(stats.Worker)}`, class: "small-text" }, "its tasks →")),
    h(
      "div",
      { class: "stat-row" },
      number("total", fmt.count(stats.Total)),
      number("completed", fmt.count(by.Completed), "s-completed"),
      number("failed", fmt.count(by.Failed), "s-failed"),
      number("canceled", fmt.count(by.Canceled), "s-canceled"),
      number("running", fmt.count(by.Running), "s-running"),
      number("queued / paused", fmt.count((by.Queued || 0) + (by.Paused || 0)), "s-queued"),
    ),
    h(
      "dl",
      { class: "kv compact" },
      h("dt", null, "Failure rate"),
      h("dd", { class: stats.FailureRate ? "bad" : null }, rateText(stats.FailureRate)),
      h("dt", null, "Average run time"),
      h("dd", null, fmt.duration(stats.AverageRunTimeSeconds)),
      h("dt", null, "p50 / p90 / p99"),
      h("dd", null, [p.p50, p.p90, p.p99].map((v) => (v === null || v === undefined ? "—" : fmt.duration(v))).join(" / ")),
      h("dt", null, "Average wait in queue"),
      h("dd", null, fmt.duration(stats.AverageQueueWaitSeconds)),
    ),
    h(
      "div",
      { class: "charts" },
      barChart({
        title: "Run-time distribution",
        bars: histogramBars(stats.RunTimeHistogram),
        series: [{ name: "tasks", cls: "fill-primary" }],
        yLabel: "tasks",
        labelEvery: 2,
        empty: "No task has finished yet.",
      }),
      throughput
        ? barChart({
            title: "Throughput, last hour (per minute)",
            bars: throughputBars(throughput),
            series: OUTCOMES,
            yLabel: "ended",
            labelEvery: 10,
            empty: "Nothing ended in the last hour.",
          })
        : null,
    ),
  );
}

export async function mountStats(main, name) {
  const workers = await loadWorkers();
  const table = h("div", { id: "stats-table" });
  const detail = h("div", { id: "stats-detail-wrap" });
  const updated = h("span", { class: "muted small-text" });
  let selected = name || null;
  replace(
    main,
    h(
      "section",
      { class: "view" },
      h("div", { class: "view-head" }, h("h1", null, "Statistics"), updated),
      table,
      detail,
    ),
  );

  function select(worker) {
    selected = worker;
    history.replaceState(null, "", `#/stats/${encodeURIComponent(worker)}`);
    load().catch(() => {});
  }

  const load = singleFlight(async () => {
    const all = await Promise.all(workers.map((w) => api(`/workers/${encodeURIComponent(w.name)}/statistics`)));
    all.sort((a, b) => b.Total - a.Total || a.Worker.localeCompare(b.Worker));
    const known = all.find((s) => s.Worker.toLowerCase() === (selected || "").toLowerCase());
    const current = known || all[0];
    if (!current) return;
    selected = current.Worker;
    const throughput = await api(`/workers/${encodeURIComponent(current.Worker)}/throughput`, { query: { minutes: 60 } }).catch(() => null);
    keepFocus(table, () => replace(table, overview(all, selected, select)));
    replace(detail, workerCard(current, throughput));
    updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
  });
  const soon = throttle(() => load().catch(() => {}), 2000);
  const stop = onEvent((event) => {
    if (event.type === "task.status" || event.type === "task.created" || event.type === "stream.reset") soon();
  });
  const timer = setInterval(soon, 30000); // the throughput window moves on even when idle
  await load();
  return () => {
    stop();
    soon.cancel();
    clearInterval(timer);
  };
}
