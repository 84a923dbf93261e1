// The task table: newest first, filtered by status and worker, one page at a time (cursor
// pagination, so 100k tasks cost the same as 100), updated live from the event stream.

import { api } from "../api.js";
import { actionButtons, progressBar, statusBadge } from "../actions.js";
import { h, replace, singleFlight, throttle } from "../dom.js";
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
  let rows = new Map(); // task id -> {tr, cells, task, keys}
  let nextCursor = null;

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

  // Rows are built once and then patched cell by cell: a row that is replaced while someone
  // clicks one of its buttons would swallow the click, and progress arrives every second.
  function buildRow(task) {
    const cells = {
      status: h("td", { dataset: { label: "Status" } }),
      progress: h("td", { class: "progress-cell", dataset: { label: "Progress" } }),
      duration: h("td", { class: "duration", dataset: { label: "Duration" } }),
      created: h("td", { dataset: { label: "Created" }, title: fmt.fullTime(task.CreatedAt) }),
      actions: h("td", { class: "actions-cell", dataset: { label: "Actions" } }),
    };
    const tr = h(
      "tr",
      { dataset: { task: task.TaskId } },
      cells.status,
      h(
        "td",
        { dataset: { label: "Task" } },
        h("a", { href: `#/tasks/${task.TaskId}`, class: "mono task-link", title: task.TaskId }, fmt.shortId(task.TaskId)),
      ),
      h("td", { dataset: { label: "Worker" } }, task.Worker),
      cells.progress,
      cells.duration,
      cells.created,
      cells.actions,
    );
    const row = { tr, cells, task: null, keys: {} };
    patchRow(row, task);
    return row;
  }

  function patchRow(row, task) {
    const { tr, cells, keys } = row;
    row.task = task;
    tr.dataset.status = task.Status;
    tr.className = `row-${task.Status.toLowerCase()}`;
    if (keys.status !== task.Status) replace(cells.status, statusBadge(task.Status));
    const hasProgress = task.Progress !== undefined && task.Progress !== null;
    const active = task.Status === "Running" || task.Status === "Paused";
    const progressKey = `${hasProgress || active}|${task.Status}`;
    if (keys.progress !== progressKey) {
      replace(
        cells.progress,
        // A finished task that never reported progress has nothing to show.
        hasProgress || active ? progressBar(task.Progress, task.Status) : h("span", { class: "muted no-progress" }, "—"),
        h("span", { class: "pct" }),
      );
    }
    const bar = cells.progress.querySelector("progress");
    if (bar && hasProgress) bar.value = Math.round(Math.max(0, Math.min(1, task.Progress)) * 1000) / 10;
    else if (bar) bar.removeAttribute("value");
    cells.progress.querySelector(".pct").textContent = hasProgress ? fmt.percent(task.Progress) : "";
    cells.duration.textContent = fmt.duration(runningSeconds(task));
    cells.created.textContent = fmt.ago(task.CreatedAt);
    const actionsKey = `${task.Status}|${Boolean(task.StartedAt)}`;
    if (keys.actions !== actionsKey) {
      const onDone = (result) => {
        if (!result) {
          keys.actions = ""; // refused (the toast says why): give the buttons back
          patchRow(row, row.task);
        }
        refreshSoon();
      };
      replace(cells.actions, actionButtons(task, { compact: true, onDone }));
    }
    Object.assign(keys, { status: task.Status, progress: progressKey, actions: actionsKey });
  }

  function draw(tasks) {
    const next = new Map();
    for (const task of tasks) {
      const row = rows.get(task.TaskId);
      if (row) patchRow(row, task);
      next.set(task.TaskId, row || buildRow(task));
    }
    rows = next;
    tbody.replaceChildren(...[...rows.values()].map((row) => row.tr));
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

  const load = singleFlight(async () => {
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
  });

  const refreshSoon = throttle(() => load().catch(() => {}), 700);

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
    const row = rows.get(taskId);
    if (row) patchRow(row, { ...row.task, ...changes });
  }

  let firstLoadDone = false;
  const stopEvents = onEvent((event) => {
    if (event.type === "stream.reset") return refreshSoon();
    if (!event.task) return;
    // The first page may have been read before this change: read it again once it is in.
    if (!firstLoadDone) return void load().catch(() => {});
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
    for (const { task, cells } of rows.values()) {
      if (task.Status === "Running" || task.Status === "Paused") {
        cells.duration.textContent = fmt.duration(runningSeconds(task));
      }
    }
  }, 1000);

  await load();
  firstLoadDone = true;
  return () => {
    stopEvents();
    refreshSoon.cancel();
    clearInterval(ticker);
  };
}
