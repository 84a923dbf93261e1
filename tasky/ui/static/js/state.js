// What every view shares: server metadata, the workers, and the live event bus.

import { api } from "./api.js";

const listeners = new Set();
let meta = null;
let workers = null;
let workersLoading = null;

export async function loadMeta() {
  const response = await fetch("/tasky/ui/meta.json", { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`the page's metadata: HTTP ${response.status}`);
  meta = await response.json();
  return meta;
}

export function getMeta() {
  return meta;
}

export async function loadWorkers(force = false) {
  if (workers && !force) return workers;
  if (!workersLoading) {
    workersLoading = api("/workers").then(
      (list) => {
        workers = list;
        workersLoading = null;
        return list;
      },
      (error) => {
        workersLoading = null;
        throw error;
      },
    );
  }
  return workersLoading;
}

export function workerNamed(name) {
  if (!workers || !name) return null;
  const lower = name.toLowerCase();
  return workers.find((w) => w.name.toLowerCase() === lower) || null;
}

/** Subscribe to live events; returns the unsubscribe function (views call it on leaving). */
export function onEvent(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function publish(event) {
  for (const fn of [...listeners]) {
    try {
      fn(event);
    } catch (error) {
      console.error("event listener failed", error);
    }
  }
}

/**
 * Which actions a task allows now, as [action, allowed, why-not] — the same rules as the engine:
 * the state machine (meta.ActionSources) and what the worker supports. Pausing or resuming a task
 * that has not started only holds it in the queue, which every worker allows.
 */
export function actionStates(task) {
  const worker = workerNamed(task.Worker);
  const sources = (meta && meta.ActionSources) || {};
  return ["pause", "resume", "cancel", "run"].map((action) => {
    const from = sources[action] || [];
    if (!from.includes(task.Status)) return [action, false, `not possible while ${task.Status}`];
    if (action === "run") return [action, true, ""];
    const heldInQueue = task.Status === "Queued" || (task.Status === "Paused" && !task.StartedAt);
    if ((action === "pause" || action === "resume") && heldInQueue) return [action, true, ""];
    if (!worker) return [action, false, "the worker is not registered"];
    if (!(worker.actions || []).includes(action)) {
      return [action, false, `${worker.name} does not support ${action}`];
    }
    return [action, true, ""];
  });
}
