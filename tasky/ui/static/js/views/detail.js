// One task: status and actions, progress, config (editable while it has not started), result or
// error, live logs, attempts and timings.

import { api, ApiError } from "../api.js";
import { actionButtons, progressBar, statusBadge } from "../actions.js";
import { copyButton, h, jsonBlock, prettyJson, replace, singleFlight, throttle, toast } from "../dom.js";
import * as fmt from "../format.js";
import { schemaForm } from "../form.js";
import { logView } from "../logview.js";
import { loadWorkers, onEvent, workerNamed } from "../state.js";

function card(title, body, extra) {
  return h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", null, title), extra), body);
}

function kv(pairs) {
  return h(
    "dl",
    { class: "kv" },
    pairs.map(([key, value]) => [h("dt", null, key), h("dd", null, value)]),
  );
}

export async function mountDetail(main, taskId) {
  await loadWorkers();
  let task = null;
  let editing = false;
  // Which tracebacks are unfolded ("task" or an attempt number): redraws keep them so.
  const unfolded = new Set();

  const head = h("div", { class: "detail-head" });
  const progress = h("div", { class: "detail-progress" });
  const timings = h("div");
  const config = h("div", { id: "task-config" });
  const output = h("div", { id: "task-output" });
  const attempts = h("div");
  const log = logView(taskId);
  const configCard = card("Config", config);
  const resultCard = card("Result", output);

  replace(
    main,
    h(
      "section",
      { class: "view detail", id: "task-detail" },
      h("a", { href: "#/tasks", class: "back" }, "← All tasks"),
      head,
      progress,
      h(
        "div",
        { class: "detail-grid" },
        h("div", { class: "stack" }, resultCard, card("Logs", [log.empty, log.box], log.tools)),
        h("div", { class: "stack" }, card("Timings", timings), configCard, card("Attempts", attempts)),
      ),
    ),
  );

  // The title (status and action buttons) is redrawn only when the status changes: buttons
  // replaced under a pointer would swallow a click, and progress arrives every second.
  let headKey = "";
  function drawHead() {
    const key = `${task.Status}|${Boolean(task.StartedAt)}`;
    if (key !== headKey) {
      headKey = key;
      replace(
        head,
        h(
          "div",
          { class: "title-row" },
          h("h1", null, task.Worker, " ", h("span", { class: "muted mono id" }, fmt.shortId(task.TaskId))),
          statusBadge(task.Status),
          h("span", { class: "queue-place muted small-text", id: "queue-place" }),
          h("span", { class: "spacer" }),
          actionButtons(task, {
            onDone: (status) => {
              headKey = ""; // redraw the buttons even if the status has not moved yet
              if (status) refresh();
              else drawHead();
            },
          }),
        ),
        h("p", { class: "muted mono small-text" }, task.TaskId, " ", copyButton(task.TaskId, "Copy id")),
      );
    }
    head.querySelector("#queue-place").textContent = fmt.queuePlace(task);
    drawProgress();
  }

  function drawProgress() {
    const running = task.Status === "Running" || task.Status === "Paused";
    const hasProgress = task.Progress !== null && task.Progress !== undefined;
    progress.hidden = !running && !hasProgress;
    let bar = progress.querySelector("progress");
    if (!bar || !bar.classList.contains(`status-${task.Status.toLowerCase()}`)) {
      bar = progressBar(task.Progress, task.Status);
      replace(progress, bar, h("span", { class: "progress-text", id: "progress-text" }));
    }
    if (hasProgress) bar.value = Math.round(Math.max(0, Math.min(1, task.Progress)) * 1000) / 10;
    else bar.removeAttribute("value");
    progress.querySelector("#progress-text").textContent =
      (hasProgress ? fmt.percent(task.Progress) : "") + (task.ProgressMessage ? ` · ${task.ProgressMessage}` : "");
  }

  function drawTimings() {
    const wait = task.StartedAt && task.QueuedAt ? task.StartedAt - task.QueuedAt : null;
    replace(
      timings,
      kv([
        ["Created", fmt.fullTime(task.CreatedAt)],
        ["Queued", fmt.fullTime(task.QueuedAt) || "—"],
        ["Started", fmt.fullTime(task.StartedAt) || "—"],
        ["Finished", fmt.fullTime(task.FinishedAt) || "—"],
        ["Run time", h("span", { class: "duration" }, fmt.duration(runSeconds()))],
        ["Waited in queue", wait === null ? "—" : fmt.duration(wait)],
        ["Attempt", `${task.Attempt} of ${task.Retries + 1}`],
        ["Timeout", task.Timeout ? fmt.duration(task.Timeout) : "none"],
        ...(task.ChainId ? [["Chain", h("a", { href: `#/chains/${task.ChainId}`, class: "mono" }, fmt.shortId(task.ChainId))]] : []),
      ]),
    );
  }

  function runSeconds() {
    return fmt.runSeconds(task);
  }

  function canEdit() {
    return task.Status === "Queued" || (task.Status === "Paused" && !task.StartedAt);
  }

  function drawConfig() {
    if (editing) return;
    const button = canEdit()
      ? h("button", { type: "button", class: "ghost small", id: "edit-config" }, "Edit")
      : null;
    if (button) button.addEventListener("click", startEdit);
    replace(config, jsonBlock(task.Config, "Config"));
    const headNode = configCard.querySelector(".card-head");
    headNode.querySelector("#edit-config")?.remove();
    if (button) headNode.append(button);
  }

  function startEdit() {
    const worker = workerNamed(task.Worker);
    if (!worker) return;
    editing = true;
    configCard.querySelector("#edit-config")?.remove();
    const form = schemaForm(worker.config_objects || {}, { values: task.Config, idPrefix: "edit-" });
    const save = h("button", { type: "submit", class: "primary" }, "Save config");
    const cancel = h("button", { type: "button", class: "ghost" }, "Discard");
    const element = h("form", { class: "task-form", novalidate: true }, form.element, h("div", { class: "row end" }, cancel, save));
    cancel.addEventListener("click", () => {
      editing = false;
      drawConfig();
    });
    element.addEventListener("submit", async (event) => {
      event.preventDefault();
      const { value, problems } = form.read();
      if (problems.length) return form.showErrors(problems);
      save.disabled = true;
      try {
        await api(`/tasks/${task.TaskId}`, { method: "PUT", body: value });
        toast("Config saved");
        editing = false;
        await refresh();
      } catch (error) {
        if (error instanceof ApiError) form.showErrors(error.fields, error.message);
        else throw error;
      } finally {
        save.disabled = false;
      }
    });
    replace(config, element);
  }

  function drawOutput() {
    const parts = [];
    // A cancel is what someone asked for, not a failure: a plain note, never the red error box.
    const canceled = task.Status === "Canceled";
    if (canceled) parts.push(canceledNote(task.Error));
    else if (task.Error) parts.push(h("div", { class: "error-box", id: "task-error" }, h("strong", null, "Error: "), task.Error));
    const current = (task.Attempts || []).find((a) => a.Attempt === task.Attempt);
    if (task.Status === "Failed" && current && current.Traceback) {
      parts.push(traceback(current.Traceback, "task", "task-traceback"));
    }
    if (task.Status === "Completed") {
      const text = prettyJson(task.Output);
      parts.push(h("div", { class: "row end" }, copyButton(text)), jsonBlock(task.Output, "Result", "output"));
    } else if (!task.Error && !canceled) {
      parts.push(h("p", { class: "muted" }, "Not finished yet."));
    }
    replace(output, parts);
    // While it runs the logs matter most; once it has finished, its result does.
    const finished = ["Completed", "Failed", "Canceled"].includes(task.Status);
    const column = resultCard.parentNode;
    if (finished) column.prepend(resultCard);
    else column.append(resultCard);
    resultCard.querySelector("h2").textContent = task.Error && !canceled ? "Error" : "Result";
  }

  function canceledNote(reason) {
    // "canceled" is the engine's word for a cancel someone asked for; other reasons say more.
    const why = reason && reason !== "canceled" ? `: ${reason}` : " on request";
    return h("div", { class: "note-box", id: "task-canceled" }, `This task was canceled${why}, before it finished.`);
  }

  // A traceback, folded: as text (it quotes the worker's code and its error), never as HTML.
  function traceback(text, key, id) {
    const box = h(
      "details",
      { class: "traceback", id, open: unfolded.has(key), ontoggle: () => (box.open ? unfolded.add(key) : unfolded.delete(key)) },
      h("summary", null, "Traceback"),
      h("pre", { tabindex: "0", "aria-label": "Traceback" }, text),
    );
    return box;
  }

  function drawAttempts() {
    const list = task.Attempts || [];
    if (!list.length) {
      replace(attempts, h("p", { class: "muted" }, "No attempt has ended yet."));
      return;
    }
    replace(
      attempts,
      h(
        "table",
        { class: "mini" },
        h("thead", null, h("tr", null, ["#", "Status", "Started", "Run time", "Error"].map((t) => h("th", null, t)))),
        h(
          "tbody",
          null,
          list.map((a) =>
            h(
              "tr",
              null,
              h("td", null, String(a.Attempt)),
              h("td", null, statusBadge(a.Status)),
              h("td", null, fmt.time(a.StartedAt)),
              h("td", null, a.StartedAt && a.FinishedAt ? fmt.duration(fmt.runSeconds(a)) : "—"),
              h("td", { class: "wrap" }, a.Error || "", a.Traceback ? traceback(a.Traceback, a.Attempt) : null),
            ),
          ),
        ),
      ),
    );
  }

  // One read at a time: an older answer can never overwrite a newer one.
  const refresh = singleFlight(refreshOnce);

  async function refreshOnce() {
    try {
      task = await api(`/tasks/${taskId}`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        replace(main, h("section", { class: "view" }, h("h1", null, "No such task"), h("p", { class: "muted" }, error.message), h("a", { href: "#/tasks" }, "← All tasks")));
        return false;
      }
      throw error;
    }
    drawHead();
    drawTimings();
    drawConfig();
    drawOutput();
    drawAttempts();
    return true;
  }

  const loadLogs = singleFlight(() => log.load());

  const logsSoon = throttle(() => loadLogs().catch(() => {}), 300);
  const refreshSoon = throttle(() => refresh().catch(() => {}), 400);

  // When this task was last heard of (an event) or re-read. A task that runs on another node
  // (many nodes on one PostgreSQL) sends its status changes to every node's event stream, but
  // its progress and log lines only to its own node's: those reach this page by a re-read of a
  // task that has been quiet for a while.
  let heardAt = Date.now();
  const QUIET_MS = 3000;

  const stop = onEvent((event) => {
    if (event.task === taskId) heardAt = Date.now();
    if (event.type === "stream.reset") {
      refreshSoon();
      logsSoon();
      return;
    }
    if (event.task !== taskId) {
      // Another task of the worker joined, left or moved in the queue: this one's place may move.
      if (task && task.Status === "Queued" && event.type === "task.status" && event.worker === task.Worker) refreshSoon();
      return;
    }
    if (!task) {
      // The first read is still in flight and may predate this change: read once more after it.
      if (event.type === "task.status") refresh().catch(() => {});
      return;
    }
    if (event.type === "task.progress") {
      task.Progress = event.progress;
      task.ProgressMessage = event.message;
      drawProgress();
    } else if (event.type === "task.log") {
      logsSoon();
    } else if (event.type === "task.status") {
      fmt.notePause(task, event.status);
      task.Status = event.status;
      log.setStatus(event.status);
      drawHead();
      refreshSoon();
      logsSoon();
    }
  });

  const ticker = setInterval(() => {
    if (task && (task.Status === "Running" || task.Status === "Paused")) {
      const node = timings.querySelector(".duration");
      if (node) node.textContent = fmt.duration(runSeconds());
    }
    if (task && task.Status === "Running" && Date.now() - heardAt > QUIET_MS) {
      heardAt = Date.now();
      refreshSoon();
      logsSoon();
    }
  }, 1000);

  if (await refresh()) await loadLogs();
  return () => {
    stop();
    logsSoon.cancel();
    refreshSoon.cancel();
    clearInterval(ticker);
  };
}
