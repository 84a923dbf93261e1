// The task table: newest first, filtered by status, worker, time of creation and text in the
// error, one page at a time (cursor pagination, so 100k tasks cost the same as 100), updated live
// from the event stream. A task can be found by the start of its id. Rows can be selected (or
// every task matching the filters) for a bulk action.

import { api } from "../api.js";
import { actionButtons, icon, progressBar, statusBadge } from "../actions.js";
import { BULK_LABELS, bulkSummary, runBulk } from "../bulk.js";
import { h, replace, singleFlight, throttle, toast } from "../dom.js";
import * as fmt from "../format.js";
import { getMeta, loadWorkers, onEvent } from "../state.js";

const PAGE = 50;
const HEX = /^[0-9a-f]{1,32}$/i;
// The filters kept in the address (#/tasks?status=Failed&error=disk), in this order.
const FILTERS = ["status", "worker", "id", "from", "to", "error"];
// "Every task matching the filters" reads at most this many ids (in pages of 1000).
const MAX_BULK = 10_000;
const COLUMNS = [
  ["select", ""],
  ["status", "Status"],
  ["task", "Task"],
  ["worker", "Worker"],
  ["chain", "Chain"],
  ["progress", "Progress"],
  ["duration", "Duration"],
  ["created", "Created"],
  ["actions", "Actions"],
];

function runningSeconds(task) {
  if (task.DurationSeconds !== undefined && task.DurationSeconds !== null) return task.DurationSeconds;
  return fmt.runSeconds(task);
}

function cell(name, label, ...children) {
  return h("td", { class: `c-${name}`, dataset: { label } }, ...children);
}

export async function mountTasks(main, params) {
  const workers = await loadWorkers();
  const meta = getMeta();
  const filters = Object.fromEntries(FILTERS.map((name) => [name, params.get(name) || ""]));
  const cursors = [null]; // cursors[i] is where page i starts
  let pageIndex = 0;
  let rows = new Map(); // task id -> {tr, cells, box, task, keys}
  let nextCursor = null;
  // The selection: ids picked one by one, or (allMatching) every task the filters match.
  const selected = new Set();
  let allMatching = null; // null, or the ids read when "all matching" was chosen
  let bulkRunning = false;

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
  const fromInput = h("input", { type: "datetime-local", id: "filter-from", step: "1", "aria-label": "Created from" });
  const toInput = h("input", { type: "datetime-local", id: "filter-to", step: "1", "aria-label": "Created before" });
  fromInput.value = filters.from;
  toInput.value = filters.to;
  const errorInput = h("input", { type: "search", id: "filter-error", placeholder: "Text in the error", "aria-label": "Text in the error", autocomplete: "off", maxlength: "200" });
  errorInput.value = filters.error;
  const findInput = h("input", { type: "search", id: "find-task", placeholder: "Task id or its start", "aria-label": "Find a task by its id", autocomplete: "off", spellcheck: "false", maxlength: "32", class: "mono" });
  const findButton = h("button", { type: "submit", class: "ghost" }, "Go");
  const findForm = h("form", { class: "find-task", id: "find-form", role: "search", "aria-label": "Find a task" }, findInput, findButton);
  const idNote = h("p", { class: "id-note", id: "id-filter-note", hidden: true });
  const clearFilters = h("button", { type: "button", class: "ghost small", id: "clear-filters" }, "Clear filters");
  const summary = h("span", { class: "muted page-info" });
  const newer = h("button", { type: "button", class: "ghost", id: "page-newer" }, "← Newer");
  const older = h("button", { type: "button", class: "ghost", id: "page-older" }, "Older →");
  const tbody = h("tbody", { id: "task-rows" });
  const empty = h("div", { class: "empty", hidden: true });
  const pageBox = h("input", { type: "checkbox", id: "select-page", "aria-label": "Select every task on this page" });

  const bulkCount = h("span", { class: "bulk-count", id: "bulk-count" });
  const selectMatching = h("button", { type: "button", class: "ghost small", id: "select-matching" }, "Select all tasks matching the filters");
  const clearSelection = h("button", { type: "button", class: "ghost small", id: "clear-selection" }, "Clear");
  const bulkButtons = Object.entries(BULK_LABELS).map(([action, [label]]) =>
    h(
      "button",
      { type: "button", class: ["action", `action-${action}`, "bulk-action"], dataset: { action }, id: `bulk-${action}` },
      icon(action),
      h("span", { class: "label" }, label),
    ),
  );
  const bulkBar = h(
    "div",
    { class: "bulk-bar", id: "bulk-bar", role: "region", "aria-label": "Bulk actions", hidden: true },
    bulkCount,
    selectMatching,
    clearSelection,
    h("span", { class: "spacer" }),
    h("div", { class: "actions" }, bulkButtons),
  );
  const bulkReport = h("div", { class: "bulk-summary card", id: "bulk-summary", role: "status", hidden: true });

  const table = h(
    "table",
    { class: "tasks", id: "task-table" },
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        COLUMNS.map(([name, title]) =>
          h("th", { scope: "col", class: `c-${name}` }, name === "select" ? pageBox : title),
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
        h("label", { class: "inline" }, "Created from", fromInput),
        h("label", { class: "inline" }, "to", toInput),
      ),
      h(
        "div",
        { class: "toolbar" },
        findForm,
        h("label", { class: "inline grow" }, "Error", errorInput),
        clearFilters,
        h("span", { class: "spacer" }),
        h("div", { class: "pager" }, summary, newer, older),
      ),
      idNote,
      bulkBar,
      bulkReport,
      h("div", { class: "table-wrap" }, table),
      empty,
    ),
  );

  // Rows are built once and then patched cell by cell: a row that is replaced while someone
  // clicks one of its buttons would swallow the click, and progress arrives every second.
  function buildRow(task) {
    const box = h("input", { type: "checkbox", class: "select-task", "aria-label": `Select task ${task.TaskId}` });
    box.addEventListener("change", () => {
      if (allMatching) dropAllMatching();
      if (box.checked) selected.add(task.TaskId);
      else selected.delete(task.TaskId);
      drawSelection();
    });
    const cells = {
      status: cell("status", "Status"),
      progress: cell("progress", "Progress"),
      duration: cell("duration", "Duration"),
      created: cell("created", "Created"),
      actions: cell("actions", "Actions"),
    };
    cells.progress.classList.add("progress-cell");
    cells.duration.classList.add("duration");
    cells.created.title = fmt.fullTime(task.CreatedAt);
    const chain = task.ChainId
      ? h("a", { href: `#/chains/${task.ChainId}`, class: "mono chain-link", title: `chain ${task.ChainId}` }, fmt.shortId(task.ChainId))
      : h("span", { class: "muted" }, "—");
    const chainCell = cell("chain", "Chain", chain);
    if (!task.ChainId) chainCell.classList.add("no-chain");
    const tr = h(
      "tr",
      { dataset: { task: task.TaskId } },
      cell("select", "Select", box),
      cells.status,
      cell("task", "Task", h("a", { href: `#/tasks/${task.TaskId}`, class: "mono task-link", title: task.TaskId }, fmt.shortId(task.TaskId))),
      cell("worker", "Worker", task.Worker),
      chainCell,
      cells.progress,
      cells.duration,
      cells.created,
      cells.actions,
    );
    const row = { tr, cells, box, task: null, keys: {} };
    patchRow(row, task);
    return row;
  }

  function patchRow(row, task) {
    const { tr, cells, keys } = row;
    row.task = task;
    tr.dataset.status = task.Status;
    tr.className = `row-${task.Status.toLowerCase()}`;
    const place = fmt.queuePlace(task);
    if (keys.status !== task.Status || keys.place !== place) {
      replace(cells.status, statusBadge(task.Status), place ? h("span", { class: "queue-place muted small-text" }, place) : null);
    }
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
    Object.assign(keys, { status: task.Status, place, progress: progressKey, actions: actionsKey });
  }

  function filtered() {
    return FILTERS.some((name) => filters[name]);
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
        h("p", null, filtered() ? "No tasks match these filters." : "No tasks yet."),
        h("a", { class: "button primary", href: "#/workers" }, "Run your first task"),
      );
    }
    drawSelection();
  }

  // -- selection and bulk actions ---------------------------------------------------------------
  function chosenIds() {
    return allMatching || [...selected];
  }

  function drawSelection() {
    const ids = chosenIds();
    for (const [id, row] of rows) row.box.checked = Boolean(allMatching) || selected.has(id);
    const onPage = [...rows.keys()];
    const picked = onPage.filter((id) => allMatching || selected.has(id)).length;
    pageBox.checked = onPage.length > 0 && picked === onPage.length;
    pageBox.indeterminate = picked > 0 && picked < onPage.length;
    bulkBar.hidden = ids.length === 0;
    bulkCount.textContent = allMatching
      ? `All ${fmt.count(ids.length)} tasks matching the filters are selected${ids.length >= MAX_BULK ? " (the first 10,000)" : ""}.`
      : `${fmt.count(ids.length)} selected.`;
    selectMatching.hidden = Boolean(allMatching);
    for (const button of bulkButtons) button.disabled = bulkRunning || ids.length === 0;
  }

  function dropAllMatching() {
    // Picking rows by hand after "all matching" starts again from the rows on screen.
    for (const id of rows.keys()) selected.add(id);
    allMatching = null;
  }

  /** Every task id the filters match, newest first, up to MAX_BULK. */
  async function matchingIds() {
    const ids = [];
    let cursor = null;
    do {
      const page = await api("/tasks", { query: { ...listQuery(), order: "desc", limit: 1000, cursor } });
      ids.push(...page.Tasks.map((t) => t.TaskId));
      cursor = page.NextCursor;
    } while (cursor !== null && ids.length < MAX_BULK);
    return ids.slice(0, MAX_BULK);
  }

  pageBox.addEventListener("change", () => {
    if (allMatching) dropAllMatching();
    for (const id of rows.keys()) {
      if (pageBox.checked) selected.add(id);
      else selected.delete(id);
    }
    drawSelection();
  });
  selectMatching.addEventListener("click", async () => {
    selectMatching.disabled = true;
    try {
      allMatching = await matchingIds();
      selected.clear();
    } finally {
      selectMatching.disabled = false;
    }
    drawSelection();
  });
  clearSelection.addEventListener("click", () => {
    selected.clear();
    allMatching = null;
    drawSelection();
  });
  for (const button of bulkButtons) {
    button.addEventListener("click", async () => {
      const action = button.dataset.action;
      const ids = chosenIds();
      const [label] = BULK_LABELS[action];
      if (!ids.length || !window.confirm(`${label}: ${fmt.count(ids.length)} ${ids.length === 1 ? "task" : "tasks"}?`)) return;
      bulkRunning = true;
      drawSelection();
      bulkReport.hidden = false;
      replace(bulkReport, h("p", null, `${label}: 0 of ${fmt.count(ids.length)}…`));
      const result = await runBulk(ids, action, (finished, total) => {
        bulkReport.firstChild.textContent = `${label}: ${fmt.count(finished)} of ${fmt.count(total)}…`;
      });
      bulkRunning = false;
      const close = h("button", { type: "button", class: "ghost small", id: "close-summary", "aria-label": "Close the summary" }, "Close");
      close.addEventListener("click", () => {
        bulkReport.hidden = true;
      });
      replace(bulkReport, h("div", { class: "row bulk-report-head" }, h("span", { class: "spacer" }), close), bulkSummary(action, result));
      selected.clear();
      allMatching = null;
      drawSelection();
      load().catch(() => {});
    });
  }

  // -- reading pages ---------------------------------------------------------------------------
  /** A datetime-local value (the browser's local time) as Unix seconds, or "" when empty. */
  function seconds(local) {
    const ms = local ? new Date(local).getTime() : NaN;
    return Number.isNaN(ms) ? "" : String(Math.round(ms) / 1000);
  }

  function listQuery() {
    return {
      status: filters.status,
      worker: filters.worker,
      id: filters.id,
      created_after: seconds(filters.from),
      created_before: seconds(filters.to),
      error: filters.error,
    };
  }

  const load = singleFlight(async () => {
    const page = await api("/tasks", {
      query: { ...listQuery(), order: "desc", limit: PAGE, cursor: cursors[pageIndex] },
    });
    nextCursor = page.NextCursor;
    draw(page.Tasks);
  });

  const refreshSoon = throttle(() => load().catch(() => {}), 700);

  function setFilters() {
    filters.status = statusSelect.value;
    filters.worker = workerSelect.value;
    filters.from = fromInput.value;
    filters.to = toInput.value;
    filters.error = errorInput.value.trim();
    const query = new URLSearchParams();
    for (const name of FILTERS) if (filters[name]) query.set(name, filters[name]);
    const text = query.toString();
    drawIdNote();
    history.replaceState(null, "", `#/tasks${text ? `?${text}` : ""}`);
    cursors.length = 1;
    pageIndex = 0;
    // "All matching" meant the old filters.
    allMatching = null;
    load();
  }

  statusSelect.addEventListener("change", setFilters);
  workerSelect.addEventListener("change", setFilters);
  fromInput.addEventListener("change", setFilters);
  toInput.addEventListener("change", setFilters);
  const errorSoon = throttle(setFilters, 400);
  errorInput.addEventListener("input", errorSoon);
  clearFilters.addEventListener("click", () => {
    statusSelect.value = workerSelect.value = fromInput.value = toInput.value = errorInput.value = "";
    filters.id = "";
    setFilters();
  });

  function drawIdNote() {
    clearFilters.hidden = !filtered();
    idNote.hidden = !filters.id;
    if (!filters.id) return;
    const drop = h("button", { type: "button", class: "ghost small", id: "drop-id-filter" }, "Show all ids");
    drop.addEventListener("click", () => {
      filters.id = "";
      setFilters();
    });
    replace(idNote, "Tasks whose id starts with ", h("code", null, filters.id), " ", drop);
  }

  // Find a task by its id or the start of it: one match opens it, several are listed.
  findForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const wanted = findInput.value.trim().toLowerCase();
    if (!HEX.test(wanted)) {
      toast("A task id is made of hex digits (0-9, a-f).");
      return;
    }
    const found = await api("/tasks", { query: { id: wanted, limit: 2 } });
    if (found.Tasks.length === 1) {
      location.hash = `#/tasks/${found.Tasks[0].TaskId}`;
    } else if (!found.Tasks.length) {
      toast(`No task id starts with ${wanted}.`);
    } else {
      filters.id = wanted;
      setFilters();
    }
  });
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

  /** A task of a worker whose Queued tasks are shown changed status: their places may move. */
  function queueMoves(event) {
    for (const { task } of rows.values()) {
      if (task.Status === "Queued" && task.Worker === event.worker) return true;
    }
    return false;
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
        const known = rows.get(event.task).task;
        if (event.status === "Running" && !known.StartedAt) changes.StartedAt = Date.now() / 1000;
        const pauses = { StartedAt: known.StartedAt, FinishedAt: known.FinishedAt, PausedAt: known.PausedAt, PausedSeconds: known.PausedSeconds };
        fmt.notePause(pauses, event.status);
        changes.PausedAt = pauses.PausedAt;
        changes.PausedSeconds = pauses.PausedSeconds;
        update(event.task, changes);
      }
      // Times, durations, queue places and membership of a status filter come from the server.
      if (shown || (pageIndex === 0 && filters.status === event.status) || queueMoves(event)) refreshSoon();
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

  drawIdNote();
  await load();
  firstLoadDone = true;
  return () => {
    stopEvents();
    refreshSoon.cancel();
    clearInterval(ticker);
  };
}
