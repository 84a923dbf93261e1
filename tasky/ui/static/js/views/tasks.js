// The task table: newest first, filtered by status and worker, one page at a time (cursor
// pagination, so 100k tasks cost the same as 100), updated live from the event stream.

import { api } from "../api.js";
import { actionButtons, progressBar, statusBadge } from "../actions.js";
import { h, replace, throttle } from "../dom.js";
import * as fmt from "../format.js";
import { getMeta, loadWorkers, onEvent } from "../state.js";

const PAGE = 50;

function runningSeconds(task) {
  if (task.DurationSeconds !== undefined && task.DurationSeconds !== null) return task.DurationSeconds;
  if (!task.StartedAt) return null;
  const end = task.FinishedAt || Date.now() / 1000;
  return Math.max(0, end - task.StartedAt);
}

export async function mountTasks(main, params) {
  const workers = await loadWorkers();
  const meta = getMeta();
  const filters = { status: params.get("status") || "", worker: params.get("worker") || "" };
  const cursors = [null]; // cursors[i] is where page i starts
  let pageIndex = 0;
  let rows = new Map(); // task id -> {task, tr}
  let nextCursor = null;
  let loading = false;

  const statusSelect = h(
    "select",
    { id: "filter-status", "aria-label": "Status" },
    h("option", { value: "" }, "All statuses"),
    meta.Statuses.map((s) => h("option", { value: s }, s)),
  );
  statusSelect.value = filters.status;
  const workerSelect = h(
    "select",
    { id: "filter-worker", "aria-label": "Worker" },
    h("option", { value: "" }, "All workers"),
    workers.map((w) => h("option", { value: w.name }, w.name)),
  );
  workerSelect.value = filters.worker;
  const summary = h("span", { class: "muted page-info" });
  const newer = h("button", { type: "button", class: "ghost", id: "page-newer" }, "← Newer");
  const older = h("button", { type: "button", class: "ghost", id: "page-older" }, "Older →");
  const tbody = h("tbody", { id: "task-rows" });
  const empty = h("div", { class: "empty", hidden: true });

  const table = h(
    "table",
    { class: "tasks", id: "task-table" },
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        ["Status", "Task", "Worker", "Progress", "Duration", "Created", "Actions"].map((t) =>
          h("th", { scope: "col" }, t),
        ),
      ),
    ),
    tbody,
  );

  replace(
    main,
    h(
      "section",
      { class: "view" },
      h(
        "div",
        { class: "view-head" },
        h("h1", null, "Tasks"),
        h("a", { class: "button primary", href: "#/workers" }, "+ New task"),
      ),
      h(
        "div",
        { class: "toolbar" },
        h("label", { class: "inline" }, "Status", statusSelect),
        h("label", { class: "inline" }, "Worker", workerSelect),
        h("span", { class: "spacer" }),
        h("div", { class: "pager" }, summary, newer, older),
      ),
      h("div", { class: "table-wrap" }, table),
      empty,
    ),
  );

  function renderRow(task) {
    const seconds = runningSeconds(task);
    const hasProgress = task.Progress !== undefined && task.Progress !== null;
    const active = task.Status === "Running" || task.Status === "Paused";
    const progressCell = h(
      "td",
      { class: "progress-cell", dataset: { label: "Progress" } },
      // A finished task that never reported progress has nothing to show.
      hasProgress || active ? progressBar(task.Progress, task.Status) : h("span", { class: "muted no-progress" }, "—"),
      h("span", { class: "pct" }, hasProgress ? fmt.percent(task.Progress) : ""),
    );
    const tr = h(
      "tr",
      { dataset: { task: task.TaskId, status: task.Status }, class: `row-${task.Status.toLowerCase()}` },
      h("td", { dataset: { label: "Status" } }, statusBadge(task.Status)),
      h(
        "td",
        { dataset: { label: "Task" } },
        h("a", { href: `#/tasks/${task.TaskId}`, class: "mono task-link", title: task.TaskId }, fmt.shortId(task.TaskId)),
      ),
      h("td", { dataset: { label: "Worker" } }, task.Worker),
      progressCell,
      h("td", { class: "duration", dataset: { label: "Duration" } }, fmt.duration(seconds)),
      h("td", { dataset: { label: "Created" }, title: fmt.fullTime(task.CreatedAt) }, fmt.ago(task.CreatedAt)),
      h("td", { class: "actions-cell", dataset: { label: "Actions" } }, actionButtons(task, { compact: true, onDone: () => refreshSoon() })),
    );
    return tr;
  }

  function draw(tasks) {
    rows = new Map();
    replace(tbody);
    for (const task of tasks) {
      const tr = renderRow(task);
      rows.set(task.TaskId, { task, tr });
      tbody.append(tr);
    }
    const first = pageIndex * PAGE + 1;
    summary.textContent = tasks.length ? `${first}–${first + tasks.length - 1}` : "";
    newer.disabled = pageIndex === 0;
    older.disabled = nextCursor === null;
    empty.hidden = tasks.length > 0;
    table.hidden = tasks.length === 0;
    if (!tasks.length) {
      replace(
        empty,
        h("p", null, filters.status || filters.worker ? "No tasks match these filters." : "No tasks yet."),
        h("a", { class: "button primary", href: "#/workers" }, "Run your first task"),
      );
    }
  }

  async function load() {
    if (loading) return refreshSoon();
    loading = true;
    try {
      const page = await api("/tasks", {
        query: {
          order: "desc",
          limit: PAGE,
          cursor: cursors[pageIndex],
          status: filters.status,
          worker: filters.worker,
        },
      });
      nextCursor = page.NextCursor;
      draw(page.Tasks);
    } finally {
      loading = false;
    }
  }

  const refreshSoon = throttle(() => load(), 700);

  function setFilters() {
    filters.status = statusSelect.value;
    filters.worker = workerSelect.value;
    const query = new URLSearchParams();
    if (filters.status) query.set("status", filters.status);
    if (filters.worker) query.set("worker", filters.worker);
    const text = query.toString();
    history.replaceState(null, "", `#/tasks${text ? `?${text}` : ""}`);
    cursors.length = 1;
    pageIndex = 0;
    load();
  }

  statusSelect.addEventListener("change", setFilters);
  workerSelect.addEventListener("change", setFilters);
  newer.addEventListener("click", () => {
    if (pageIndex > 0) {
      pageIndex -= 1;
      load();
    }
  });
  older.addEventListener("click", () => {
    if (nextCursor !== null) {
      cursors[pageIndex + 1] = nextCursor;
      pageIndex += 1;
      load();
    }
  });

  function update(taskId, changes) {
    const entry = rows.get(taskId);
    if (!entry) return;
    Object.assign(entry.task, changes);
    const tr = renderRow(entry.task);
    entry.tr.replaceWith(tr);
    entry.tr = tr;
  }

  const stopEvents = onEvent((event) => {
    if (event.type === "stream.reset") return refreshSoon();
    if (!event.task) return;
    if (filters.worker && event.worker && event.worker !== filters.worker) return;
    const shown = rows.has(event.task);
    if (event.type === "task.progress" && shown) {
      update(event.task, { Progress: event.progress });
    } else if (event.type === "task.status") {
      if (shown) {
        const changes = { Status: event.status };
        if (event.status === "Running" && !rows.get(event.task).task.StartedAt) changes.StartedAt = Date.now() / 1000;
        update(event.task, changes);
      }
      // Times, durations and membership of a status filter come from the server.
      if (shown || (pageIndex === 0 && filters.status === event.status)) refreshSoon();
    } else if (event.type === "task.created" && pageIndex === 0) {
      if (!filters.status || filters.status === event.status) refreshSoon();
    }
  });

  // Durations of running tasks and "x s ago" move on their own.
  const ticker = setInterval(() => {
    for (const { task, tr } of rows.values()) {
      if (task.Status === "Running" || task.Status === "Paused") {
        const cell = tr.querySelector(".duration");
        if (cell) cell.textContent = fmt.duration(runningSeconds(task));
      }
    }
  }, 1000);

  await load();
  return () => {
    stopEvents();
    refreshSoon.cancel();
    clearInterval(ticker);
  };
}
