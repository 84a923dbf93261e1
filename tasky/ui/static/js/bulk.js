// Bulk actions on tasks: the existing action route called for each task, a few at a time, and a
// summary of what was done and what the server refused, grouped by its reason.

import { api } from "./api.js";
import { h } from "./dom.js";
import * as fmt from "./format.js";

// A handful of calls in flight: quick for hundreds of tasks, gentle on a server that also runs them.
const CONCURRENCY = 4;

export const BULK_LABELS = {
  cancel: ["Cancel", "canceled"],
  pause: ["Pause", "paused"],
  resume: ["Resume", "resumed"],
  run: ["Run again", "started again"],
};

/**
 * POST `action` for every id, CONCURRENCY at a time. Returns {done: [id], refused: Map(reason ->
 * [id])}; onProgress(finished, total) is called after each answer.
 */
export async function runBulk(ids, action, onProgress = () => {}) {
  const done = [];
  const refused = new Map();
  let next = 0;
  let finished = 0;
  async function lane() {
    while (next < ids.length) {
      const id = ids[next++];
      try {
        await api(`/tasks/${id}/actions`, { method: "POST", body: { action } });
        done.push(id);
      } catch (error) {
        const reason = error.message || String(error);
        if (!refused.has(reason)) refused.set(reason, []);
        refused.get(reason).push(id);
      }
      onProgress(++finished, ids.length);
    }
  }
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, ids.length) }, lane));
  return { done, refused };
}

function idLinks(ids) {
  const shown = ids.slice(0, 20);
  return h(
    "span",
    { class: "bulk-ids" },
    shown.map((id) => [h("a", { href: `#/tasks/${id}`, class: "mono" }, fmt.shortId(id)), " "]),
    ids.length > shown.length ? `and ${fmt.count(ids.length - shown.length)} more` : null,
  );
}

/** What a bulk action did, as a small report: counts, then each refusal reason with its tasks. */
export function bulkSummary(action, { done, refused }) {
  const [label, past] = BULK_LABELS[action];
  const refusedCount = [...refused.values()].reduce((sum, ids) => sum + ids.length, 0);
  const total = done.length + refusedCount;
  const head = `${label}: ${fmt.count(done.length)} of ${fmt.count(total)} ${total === 1 ? "task" : "tasks"} ${past}` +
    (refusedCount ? `, ${fmt.count(refusedCount)} refused.` : ".");
  return [
    h("p", { class: "bulk-head" }, h("strong", null, head)),
    refusedCount
      ? h(
          "ul",
          { class: "bulk-reasons" },
          [...refused.entries()].map(([reason, ids]) =>
            h(
              "li",
              { dataset: { count: String(ids.length) } },
              h("span", { class: "bulk-reason" }, reason),
              h("span", { class: "muted" }, ` (${fmt.count(ids.length)} ${ids.length === 1 ? "task" : "tasks"}) `),
              idLinks(ids),
            ),
          ),
        )
      : null,
  ];
}
