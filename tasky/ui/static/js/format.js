// Numbers and times for people.

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  if (seconds < 0) seconds = 0;
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** A Queued task's place in its worker's queue ("#1 in queue": the next to start), or "". */
export function queuePlace(task) {
  return task.Status === "Queued" && task.QueuePosition ? `#${task.QueuePosition} in queue` : "";
}

/**
 * The running time of a task's (or step's) current attempt, as the server counts it: time spent
 * Paused is left out, so it stands still while the task is Paused. Up to now while it runs.
 */
export function runSeconds(record) {
  if (!record.StartedAt) return null;
  const end = record.FinishedAt || record.PausedAt || Date.now() / 1000;
  return Math.max(0, end - record.StartedAt - (record.PausedSeconds || 0));
}

/**
 * Keep a started task's pause bookkeeping in step with a status event until the server's record
 * arrives (it corrects both): a pause stops the run time now, a resume adds the pause to
 * PausedSeconds.
 */
export function notePause(record, status) {
  if (!record.StartedAt || record.FinishedAt) return;
  const now = Date.now() / 1000;
  if (status === "Paused" && !record.PausedAt) record.PausedAt = now;
  if (status !== "Paused" && record.PausedAt) {
    record.PausedSeconds = (record.PausedSeconds || 0) + Math.max(0, now - record.PausedAt);
    record.PausedAt = null;
  }
}

export function shortDuration(seconds) {
  if (seconds < 1) return `${+(seconds * 1000).toPrecision(2)}ms`;
  if (seconds < 60) return `${+seconds.toPrecision(2)}s`;
  if (seconds < 3600) return `${+(seconds / 60).toPrecision(2)}m`;
  return `${+(seconds / 3600).toPrecision(2)}h`;
}

export function time(ts) {
  if (!ts) return "—";
  const date = new Date(ts * 1000);
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  const clock = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  if (sameDay) return clock;
  return `${date.toLocaleDateString([], { month: "short", day: "numeric" })} ${clock}`;
}

export function fullTime(ts) {
  return ts ? new Date(ts * 1000).toLocaleString() : "";
}

export function ago(ts) {
  if (!ts) return "—";
  const seconds = Math.max(0, Date.now() / 1000 - ts);
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${Math.floor(seconds)} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return time(ts);
}

export function percent(fraction) {
  if (fraction === null || fraction === undefined) return "—";
  const value = fraction * 100;
  return `${value < 10 && value > 0 ? value.toFixed(1) : Math.round(value)}%`;
}

export function shortId(id) {
  return id ? id.slice(0, 8) : "";
}

export function count(n) {
  return (n || 0).toLocaleString();
}
