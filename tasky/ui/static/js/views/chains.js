// Chains: the list (live), starting one (from a definition or from steps), and one chain drawn
// as a graph and listed step by step with statuses, tasks, progress and outputs, live.

import { api, ApiError } from "../api.js";
import { statusBadge } from "../actions.js";
import { h, jsonBlock, keepFocus, replace, singleFlight, throttle, toast } from "../dom.js";
import * as fmt from "../format.js";
import { chainGraph } from "../chaingraph.js";
import { newChainPanel } from "../chainform.js";
import { getMeta, onEvent } from "../state.js";

// A chain longer than this is summed up instead of drawn, and its steps are listed a page at a
// time (the page never loads a long chain whole).
const GRAPH_MAX_STEPS = 200;
const STEP_PAGE = 100;
const STATUS_ORDER = ["Running", "Paused", "Queued", "Pending", "Completed", "Failed", "Canceled", "Skipped"];

const CHAIN_ACTIONS = [
  ["pause", "Pause"],
  ["resume", "Resume"],
  ["cancel", "Cancel"],
  ["restart", "Restart"],
];

function chainButtons(chain, onDone) {
  const sources = getMeta().ChainActionSources || {};
  return h(
    "div",
    { class: "actions" },
    CHAIN_ACTIONS.map(([action, label]) => {
      const allowed = (sources[action] || []).includes(chain.Status);
      const button = h(
        "button",
        {
          type: "button",
          class: ["action", `action-${action === "restart" ? "run" : action}`, "small-text"],
          disabled: !allowed,
          title: allowed ? label : `${label}: not possible while ${chain.Status}`,
          dataset: { action },
        },
        label,
      );
      button.addEventListener("click", async (event) => {
        event.stopPropagation();
        button.disabled = true;
        try {
          await api(`/chains/${chain.ChainId}/actions`, { method: "POST", body: { action } });
        } catch (error) {
          toast(`${label} failed: ${error.message}`, "error");
        }
        onDone();
      });
      return button;
    }),
  );
}

async function mountList(main) {
  const tbody = h("tbody");
  const empty = h("p", { class: "empty", hidden: true }, "No chains yet.");
  const table = h(
    "table",
    { class: "tasks chains", id: "chain-table" },
    h("thead", null, h("tr", null, ["Status", "Chain", "Name", "Duration", "Created", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
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
        h("h1", null, "Chains"),
        h("span", { class: "spacer" }),
        h("a", { href: "/tasky/v1/docs#/chains", class: "small-text" }, "API: POST /tasky/v1/chains"),
        h("a", { class: "button primary", href: "#/chains/new", id: "new-chain-link" }, "+ New chain"),
      ),
      h("div", { class: "table-wrap" }, table),
      empty,
    ),
  );

  const load = singleFlight(async () => {
    const page = await api("/chains", { query: { order: "desc", limit: 50 } });
    keepFocus(tbody, () => replace(
      tbody,
      page.Chains.map((chain) =>
        h(
          "tr",
          { dataset: { chain: chain.ChainId, key: chain.ChainId } },
          h("td", { dataset: { label: "Status" } }, statusBadge(chain.Status)),
          h("td", { dataset: { label: "Chain" } }, h("a", { href: `#/chains/${chain.ChainId}`, class: "mono task-link" }, fmt.shortId(chain.ChainId))),
          h("td", { dataset: { label: "Name" } }, chain.Name || chain.Definition || "—"),
          h("td", { dataset: { label: "Duration" } }, fmt.duration(chain.DurationSeconds ?? (chain.Status === "Running" ? Date.now() / 1000 - chain.CreatedAt : null))),
          h("td", { dataset: { label: "Created" }, title: fmt.fullTime(chain.CreatedAt) }, fmt.ago(chain.CreatedAt)),
          h("td", { dataset: { label: "Actions" } }, chainButtons(chain, () => soon())),
        ),
      ),
    ));
    empty.hidden = page.Chains.length > 0;
    table.hidden = page.Chains.length === 0;
  });
  const soon = throttle(() => load().catch(() => {}), 700);
  const stop = onEvent((event) => {
    if ((event.type || "").startsWith("chain.") || event.type === "stream.reset") soon();
  });
  await load();
  return () => {
    stop();
    soon.cancel();
  };
}

function stepItem(step) {
  return h(
    "li",
    { class: "chain-step", dataset: { step: step.Name, status: step.Status, key: step.Name } },
    statusBadge(step.Status),
    h("span", { class: "step-name" }, step.Name),
    h("span", { class: "muted" }, step.Worker),
    step.TaskId ? h("a", { href: `#/tasks/${step.TaskId}`, class: "mono small-text" }, fmt.shortId(step.TaskId)) : null,
    h("span", { class: "spacer" }),
    step.DurationSeconds !== null && step.DurationSeconds !== undefined ? h("span", { class: "muted small-text" }, fmt.duration(step.DurationSeconds)) : null,
    step.Error ? h("div", { class: [step.Status === "Canceled" ? "note-box" : "error-box", "small-text", "step-error"] }, step.Error) : null,
  );
}

function stagesOf(steps) {
  const stages = new Map();
  for (const step of steps) {
    if (!stages.has(step.Stage)) stages.set(step.Stage, { group: step.Group, when: step.When, steps: [] });
    stages.get(step.Stage).steps.push(step);
  }
  return stages;
}

function card(title, ...body) {
  return h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", null, title)), ...body);
}

function countsLine(counts) {
  const known = STATUS_ORDER.filter((status) => counts[status]);
  const others = Object.keys(counts).filter((status) => !STATUS_ORDER.includes(status));
  return [...known, ...others].map((status) =>
    h("span", { class: "chain-count", dataset: { status } }, statusBadge(status), ` ${fmt.count(counts[status])}`),
  );
}

async function mountChain(main, chainId) {
  const body = h("div", { class: "view detail", id: "chain-detail" });
  const head = h("div", { class: "detail-head" });
  const problem = h("div");
  const graphBox = h("div", { class: "chain-graph", id: "chain-graph" });
  const summaryBox = h("div", { class: "chain-summary", id: "chain-summary", hidden: true });
  const graphTitle = h("h2", null, "Graph");
  const stepsBox = h("div", { class: "stack" });
  const onFailure = h("span", { class: "muted small-text" });
  const pageInfo = h("span", { class: "muted small-text", id: "step-page-info" });
  const prevPage = h("button", { type: "button", class: "small-text", id: "step-prev" }, "← Previous");
  const nextPage = h("button", { type: "button", class: "small-text", id: "step-next" }, "Next →");
  const pager = h("div", { class: "pager", id: "step-pager", hidden: true }, pageInfo, prevPage, nextPage);
  const side = h("div", { class: "stack" });
  replace(
    body,
    h("a", { href: "#/chains", class: "back" }, "← All chains"),
    head,
    problem,
    h("section", { class: "card" }, h("div", { class: "card-head" }, graphTitle, h("span", { class: "muted small-text" }, "live")), graphBox, summaryBox),
    h(
      "div",
      { class: "detail-grid" },
      h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", null, "Steps"), onFailure), pager, stepsBox),
      side,
    ),
  );
  replace(main, body);
  const graph = chainGraph(graphBox);
  let chain = null;
  let headKey = "";
  // The steps listed now, and the cursors of the pages before (a long chain, page by page).
  let shown = [];
  let cursors = [null];
  let nextCursor = null;
  let firstIndex = 0;

  // The title and its buttons are redrawn only when the status moves: buttons replaced under a
  // pointer (or under the keyboard's focus) would lose the click.
  function drawHead() {
    if (headKey === chain.Status) return;
    headKey = chain.Status;
    replace(
      head,
      h(
        "div",
        { class: "title-row" },
        h("h1", null, chain.Name || chain.Definition || "Chain", " ", h("span", { class: "muted mono id" }, fmt.shortId(chain.ChainId))),
        statusBadge(chain.Status),
        h("span", { class: "spacer" }),
        chainButtons(chain, () => {
          headKey = "";
          soon();
        }),
      ),
    );
  }

  function drawProblem() {
    // A chain someone canceled is not an error; a failed one is.
    if (!chain.Error) replace(problem);
    else if (chain.Status === "Canceled") replace(problem, h("div", { class: "note-box", id: "chain-canceled" }, `Canceled: ${chain.Error}`));
    else replace(problem, h("div", { class: "error-box", id: "chain-error" }, chain.Error));
  }

  const isLong = () => chain.StepCount > GRAPH_MAX_STEPS;

  function drawSummary() {
    graphTitle.textContent = isLong() ? "Summary" : "Graph";
    graphBox.hidden = isLong();
    summaryBox.hidden = !isLong();
    if (!isLong()) return;
    replace(
      summaryBox,
      h("p", { class: "muted" }, `${chain.StepCount.toLocaleString("en")} steps: too many to draw (the graph shows chains of up to ${GRAPH_MAX_STEPS}).`),
      h("div", { class: "chain-counts", id: "chain-counts" }, countsLine(chain.StepCounts || {})),
    );
  }

  function drawSteps() {
    onFailure.textContent = `on failure: ${chain.OnFailure}`;
    pager.hidden = !isLong();
    if (isLong()) {
      const last = firstIndex + shown.length;
      pageInfo.textContent = `Steps ${(firstIndex + 1).toLocaleString("en")} to ${last.toLocaleString("en")} of ${chain.StepCount.toLocaleString("en")}`;
      prevPage.disabled = cursors.length <= 1;
      nextPage.disabled = nextCursor === null;
    }
    keepFocus(stepsBox, () => replace(
      stepsBox,
      [...stagesOf(shown).entries()].map(([index, stage]) =>
        h(
          "div",
          { class: "chain-stage" },
          h("span", { class: "chain-stage-name" }, `Stage ${index + 1}${stage.group ? ` · ${stage.group} (parallel)` : ""}${stage.when && stage.when !== "success" ? ` · when ${stage.when}` : ""}`),
          h("ol", { class: "chain-steps" }, stage.steps.map(stepItem)),
        ),
      ),
    ));
  }

  function drawSide() {
    replace(
      side,
      card(
        "Result",
        chain.Status === "Completed" ? jsonBlock(chain.Result, "Result")
        : ["Failed", "Canceled"].includes(chain.Status) ? h("p", { class: "muted" }, `No result: the chain ended ${chain.Status}.`)
        : h("p", { class: "muted" }, "Not finished yet."),
      ),
      card("Parameters", jsonBlock(chain.Parameters, "Parameters")),
      card("Timings", h("dl", { class: "kv" }, h("dt", null, "Created"), h("dd", null, fmt.fullTime(chain.CreatedAt)), h("dt", null, "Finished"), h("dd", null, fmt.fullTime(chain.FinishedAt) || "—"), h("dt", null, "Restarts"), h("dd", null, String(chain.Restarts)))),
    );
  }

  /** The progress of the graph's running steps: one read of its tasks, not one per step. */
  async function stepProgress(steps) {
    if (isLong() || !steps.some((s) => s.Status === "Running" || s.Status === "Paused")) return new Map();
    const page = await api("/tasks", { query: { chain: chainId, limit: 1000 } });
    return new Map(page.Tasks.filter((t) => t.Progress !== undefined).map((t) => [t.TaskId, t.Progress]));
  }

  /** The steps of the page shown: a short chain's own answer holds them all. */
  async function loadSteps() {
    if (!isLong()) {
      shown = chain.Steps;
      nextCursor = null;
      return;
    }
    const cursor = cursors[cursors.length - 1];
    const page = await api(`/chains/${chainId}/steps`, { query: { cursor, limit: STEP_PAGE } });
    shown = page.Steps;
    nextCursor = page.NextCursor;
  }

  const load = singleFlight(async () => {
    try {
      chain = await api(`/chains/${chainId}`, { query: { steps: GRAPH_MAX_STEPS } });
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        replace(body, h("h1", null, "No such chain"), h("a", { href: "#/chains" }, "← All chains"));
        return;
      }
      throw error;
    }
    await loadSteps();
    const progress = await stepProgress(shown).catch(() => null);
    drawHead();
    drawProblem();
    drawSummary();
    if (!isLong()) graph.update(chain.Steps, progress);
    drawSteps();
    drawSide();
  });
  const soon = throttle(() => load().catch(() => {}), 400);
  // One page move at a time: a click while a page loads would start from a stale cursor.
  async function turn(move) {
    prevPage.disabled = true;
    nextPage.disabled = true;
    move();
    await load().catch(() => {});
    drawSteps();
  }
  nextPage.addEventListener("click", () => {
    if (nextCursor === null) return;
    const cursor = nextCursor;
    const count = shown.length;
    turn(() => {
      cursors.push(cursor);
      firstIndex += count;
    });
  });
  prevPage.addEventListener("click", () => {
    if (cursors.length <= 1) return;
    turn(() => {
      cursors.pop();
      firstIndex = Math.max(0, firstIndex - STEP_PAGE);
    });
  });
  const stop = onEvent((event) => {
    if (event.type === "stream.reset") return soon();
    if (event.chain !== chainId) return;
    if (event.type === "task.progress" && chain) {
      if (!isLong()) graph.setProgress(event.task, event.progress);
    }
    // Log lines do not change this view; statuses do.
    else if (event.type === "task.status" || event.type === "task.created" || (event.type || "").startsWith("chain.")) soon();
  });
  const ticker = setInterval(() => graph.tick(), 1000);
  await load();
  return () => {
    stop();
    soon.cancel();
    clearInterval(ticker);
    graph.destroy();
  };
}

async function mountNew(main) {
  const panel = await newChainPanel((id) => {
    location.hash = `#/chains/${id}`;
  });
  replace(main, h("section", { class: "view" }, h("a", { href: "#/chains", class: "back" }, "← All chains"), h("h1", null, "New chain"), panel));
  return () => {};
}

export async function mountChains(main, id) {
  if (id === "new") return mountNew(main); // chain ids are hex: "new" is never one
  return id ? mountChain(main, id) : mountList(main);
}
